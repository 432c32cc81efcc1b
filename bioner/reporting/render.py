"""A :class:`~bioner.reporting.aggregate.Report` as Markdown, CSV and LaTeX (booktabs) tables.

Four tables: the main one (one row per setting: the named columns, precision, recall, F1 with its
95% interval, entity accuracy, exact-match rate, wall time, the paired test), per-type F1, span
scores (calibration error and average precision) and robustness (clean F1 and the drop under each
perturbation), the last two only when runs recorded them.
Markdown and LaTeX show ``mean +- std``; the CSV files hold every statistic of every metric.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bioner.reporting.aggregate import (
    CONFIDENCE_METRICS,
    FAMILIES,
    MAIN_METRICS,
    Report,
    Setting,
    Stat,
)

Table = tuple[list[str], list[list[str]]]
# Left-aligned columns; the others hold numbers.
_TEXT_COLUMNS = frozenset({*FAMILIES, "setting", "other", "runs"})


def _stat(stat: Stat | None, digits: int = 4) -> str:
    if stat is None:
        return "—"
    if stat.std is None:
        return f"{stat.mean:.{digits}f}"
    return f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f}"


def _interval(stat: Stat | None) -> str:
    if stat is None or stat.low is None or stat.high is None:
        return "—"
    mark = "†" if stat.interval == "bootstrap" else ""
    return f"[{stat.low:.4f}, {stat.high:.4f}]{mark}"


def _minutes(stat: Stat | None) -> Stat | None:
    if stat is None:
        return None
    scale = 1 / 60
    std = None if stat.std is None else stat.std * scale
    return Stat(stat.mean * scale, std, stat.n)


def _test_cells(setting: Setting) -> list[str]:
    if setting.is_baseline:
        return ["baseline", ""]
    test = setting.test
    if test is None:
        return ["—", ""]
    if test.result is None:  # no run of the baseline shares a seed (and fold) with these
        return [f"— (0 of {len(setting.runs)} runs paired)", ""]
    r = test.result
    low, high = r["ci"]
    delta = f"{r['delta']:+.4f} [{low:+.4f}, {high:+.4f}]"
    if test.unmatched:
        runs = len(setting.runs)
        delta += f" ({runs - test.unmatched} of {runs} runs paired)"
    return [delta, f"{r['p_value']:.3f}"]


def main_table(report: Report) -> Table:
    """Header and rows of the main table."""
    other = any(s.columns.get("other") for s in report.settings)
    wall = any(s.wall_time_s is not None for s in report.settings)
    speed = any(s.train_sequences_per_s is not None for s in report.settings)
    header = [*FAMILIES, *(["other"] if other else []), "runs"]
    for key, title in MAIN_METRICS.items():
        header.append(title)
        if key == "f1":
            header.append("F1 95% CI")
    header += ["wall time (min)"] if wall else []
    header += ["training seq/s"] if speed else []
    header += ["ΔF1 vs baseline [95% CI]", "p"] if report.baseline else []
    rows = []
    for s in report.settings:
        row = [s.columns[f] for f in FAMILIES] + ([s.columns["other"]] if other else [])
        row.append(s.replicates)
        for key in MAIN_METRICS:
            row.append(_stat(s.metrics.get(key)))
            if key == "f1":
                row.append(_interval(s.metrics.get(key)))
        if wall:
            row.append(_stat(_minutes(s.wall_time_s), digits=1))
        if speed:
            row.append(_stat(s.train_sequences_per_s, digits=1))
        if report.baseline:
            row += _test_cells(s)
        rows.append(row)
    return header, rows


def per_type_table(report: Report) -> Table:
    """Per-type strict F1: mean +- std and the 95% interval for each type."""
    types = report.entity_types
    header = ["setting", "runs", *types]
    rows = []
    for s in report.settings:
        row = [s.label, s.replicates]
        for type_ in types:
            stat = s.per_type.get(type_, {}).get("f1")
            row.append(f"{_stat(stat)} {_interval(stat)}" if stat else "—")
        rows.append(row)
    return header, rows


def confidence_table(report: Report) -> Table | None:
    """The span scores' expected calibration error and average precision (mean +- std over
    runs); ``None`` when no run recorded them."""
    if not any(s.confidence for s in report.settings):
        return None
    header = ["setting", "runs", *CONFIDENCE_METRICS.values()]
    rows = []
    for s in report.settings:
        n = max((stat.n for stat in s.confidence.values()), default=0)
        rows.append([s.label, str(n), *(_stat(s.confidence.get(k), 3) for k in CONFIDENCE_METRICS)])
    return header, rows


def _robustness_columns(report: Report) -> list[tuple[str, str]]:
    """``(key, title)`` of the robustness table: clean F1, text drops, embedding drops."""
    keys = sorted({k for s in report.settings for k in s.robustness})
    columns = [("robustness/f1_clean", "clean F1")]
    for key in keys:
        parts = key.split("/")
        if parts[1] == "text" and parts[-1] == "drop":
            columns.append((key, f"drop {parts[2]}"))
    embedding = [k.split("/") for k in keys if k.startswith("robustness/embedding/")]
    for _, _, name, eps, what in sorted(embedding, key=lambda p: (p[2], float(p[3]))):
        if what == "drop":
            columns.append(
                ("/".join(["robustness", "embedding", name, eps, what]), f"drop {name} ε={eps}")
            )
    return columns


def robustness_table(report: Report) -> Table | None:
    """Clean F1 and the F1 drop per perturbation (mean +- std); ``None`` when no run has any."""
    if not any(s.robustness for s in report.settings):
        return None
    columns = _robustness_columns(report)
    header = ["setting", "runs", *(title for _, title in columns)]
    rows = []
    for s in report.settings:
        n = s.robustness.get("robustness/f1_clean")
        rows.append(
            [s.label, str(n.n if n else 0), *(_stat(s.robustness.get(k)) for k, _ in columns)]
        )
    return header, rows


def _markdown_table(table: Table) -> str:
    header, rows = table
    align = ["---" if h in _TEXT_COLUMNS else "---:" for h in header]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def notes(report: Report) -> list[str]:
    """The sentences that say how to read the tables."""
    where = f" of corpus {report.corpus} (runs of several corpora: that member only)"
    out = [
        f"Scores on the {report.split} split{where if report.corpus else ''} (with cv.folds: the "
        "held-out fold). Cells: mean ± "
        "sample std over runs (seeds, folds). 95% CI: Student's t-interval of the mean over runs; "
        "† one run's document-bootstrap interval.",
        "exact match: share of sentences whose predicted entities equal the gold ones.",
    ]
    if report.pooled_keys:
        out.append(
            "Pooled within rows (these keys differ between runs but were not grouped): "
            + ", ".join(report.pooled_keys)
            + "."
        )
    if report.baseline:
        sources = " and ".join(sorted(report.gold_sources)) or "—"
        out.append(
            f"ΔF1: strict F1 of the row minus that of its baseline ({report.baseline}, same "
            "other columns), each on the pooled predictions of the runs matched by seed and fold "
            "(an ensemble's with the run of each member's); "
            "bracket: its 95% bootstrap interval. p: one-sided paired bootstrap test "
            f"(Berg-Kirkpatrick et al. 2012, {report.bootstrap_samples} samples of documents) "
            f"that the row beats its baseline. Gold spans from: {sources}."
        )
        if any(s.baseline is None and not s.is_baseline for s in report.settings):
            out.append("ΔF1 —: no baseline setting shares the row's other columns.")
    if any(s.confidence for s in report.settings):
        out.append(
            "Span scores: of each run's own spans before post-processing; ECE: expected "
            "calibration error over 10 bins of score; AP: average precision of the spans ranked "
            "by score (README, Span scores)."
        )
    if any(s.wall_time_s is not None for s in report.settings):
        out.append(
            "wall time: metrics.json wall_time_s, else the first to last timestamp of the run's "
            "train.log (eval.log)."
        )
    precisions = Counter(
        str(run.metrics["precision"])
        for setting in report.settings
        for run in setting.runs
        if run.metrics.get("precision") is not None
    )
    if len(precisions) > 1:
        counts = ", ".join(f"{p}: {n}" for p, n in sorted(precisions.items()))
        out.append(
            "The runs trained at different precisions (metrics.json precision, which "
            f"trainer.precision=auto picks by hardware; runs per precision: {counts}); a row "
            "pools them when its runs differ."
        )
    if any(s.train_sequences_per_s is not None for s in report.settings):
        out.append(
            "training seq/s: each run's mean over its epochs of metrics.json "
            "train_sequences_per_s (training sequences per second, validation excluded), then "
            "mean ± std over runs; it measures the machine's load as well as the recipe."
        )
    return out


def to_markdown(report: Report) -> str:
    """The whole report as Markdown: main table, per-type F1, robustness, notes."""
    parts = ["## Results", "", _markdown_table(main_table(report)), ""]
    parts += ["## Per-type F1", "", _markdown_table(per_type_table(report)), ""]
    confidence = confidence_table(report)
    if confidence is not None:
        parts += ["## Span scores", "", _markdown_table(confidence), ""]
    robustness = robustness_table(report)
    if robustness is not None:
        parts += ["## Robustness (F1 drop from clean)", "", _markdown_table(robustness), ""]
    parts += [f"- {line}" for line in notes(report)]
    return "\n".join(parts) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": "$\\pm$",
    "†": "$^\\dagger$",
    "Δ": "$\\Delta$",
    "ε": "$\\varepsilon$",
    "—": "---",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (and ±, †, Δ, ε as math)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _latex_table(table: Table, caption: str) -> str:
    header, rows = table
    spec = "".join("l" if h in _TEXT_COLUMNS else "r" for h in header)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in header) + " \\\\",
        "\\midrule",
        *(" & ".join(latex_escape(c) for c in row) + " \\\\" for row in rows),
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{latex_escape(caption)}}}",
        "\\end{table}",
    ]
    return "\n".join(lines)


def to_latex(report: Report) -> str:
    """The tables as LaTeX ``table`` environments (``\\usepackage{booktabs}``)."""
    caption = " ".join(notes(report))
    parts = [
        "% bioner-report; needs \\usepackage{booktabs}",
        _latex_table(main_table(report), caption),
        "",
        _latex_table(per_type_table(report), f"Per-type strict F1 on {report.split}."),
    ]
    confidence = confidence_table(report)
    if confidence is not None:
        caption = f"Span scores on {report.split}: calibration error and average precision."
        parts += ["", _latex_table(confidence, caption)]
    robustness = robustness_table(report)
    if robustness is not None:
        parts += ["", _latex_table(robustness, "Strict F1 drop from clean per perturbation.")]
    return "\n".join(parts) + "\n"


def _stat_fields(prefix: str, stat: Stat | None) -> dict[str, object]:
    if stat is None:
        return {}
    return {
        f"{prefix}_mean": stat.mean,
        f"{prefix}_std": stat.std,
        f"{prefix}_n": stat.n,
        f"{prefix}_low": stat.low,
        f"{prefix}_high": stat.high,
        f"{prefix}_interval": stat.interval,
    }


def results_rows(report: Report) -> list[dict[str, object]]:
    """One dict per setting with every statistic (the rows of ``results.csv``)."""
    rows = []
    for s in report.settings:
        row: dict[str, object] = {"setting": s.label, **{f: s.columns[f] for f in FAMILIES}}
        row["other"] = s.columns.get("other", "")
        row["runs"] = s.replicates
        row["run_dirs"] = " ".join(str(r.path) for r in s.runs)
        # The main table's metrics first, then the rest in name order.
        for key in sorted(s.metrics, key=lambda k: (k not in MAIN_METRICS, k)):
            row.update(_stat_fields(key, s.metrics[key]))
        for key, stat in s.robustness.items():
            row.update(_stat_fields(key, stat))
        for key, stat in s.confidence.items():
            row.update(_stat_fields(f"confidence/{key}", stat))
        row.update(_stat_fields("wall_time_s", s.wall_time_s))
        row.update(_stat_fields("train_sequences_per_s", s.train_sequences_per_s))
        if report.baseline:
            row["is_baseline"] = s.is_baseline
            test = s.test.result if s.test else None
            if test is not None and s.test is not None:
                row.update(
                    baseline=s.test.baseline,
                    paired_runs=len(s.runs) - s.test.unmatched,
                    unpaired_runs=s.test.unmatched,
                    pairs=s.test.pairs,  # an ensemble pairs with each member's run
                    delta_f1=test["delta"],
                    delta_f1_low=test["ci"][0],
                    delta_f1_high=test["ci"][1],
                    p_value=test["p_value"],
                )
        rows.append(row)
    return rows


def per_type_rows(report: Report) -> list[dict[str, object]]:
    """One dict per setting, entity type and score (the rows of ``per_type.csv``)."""
    rows = []
    for s in report.settings:
        for type_, stats in s.per_type.items():
            for metric, stat in stats.items():
                rows.append(
                    {"setting": s.label, "type": type_, "metric": metric}
                    | {k.split("_", 1)[1]: v for k, v in _stat_fields("x", stat).items()}
                )
    return rows


def _write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_outputs(report: Report, out: str | Path, plots: bool = True) -> dict[str, Path]:
    """Write ``results.md``, ``results.csv``, ``per_type.csv``, ``results.tex`` and the plots.

    Returns:
        name -> path of every file written.
    """
    from bioner.reporting.plots import write_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    makers: dict[str, Callable[[], str]] = {
        "results.md": lambda: to_markdown(report),
        "results.tex": lambda: to_latex(report),
    }
    for name, make in makers.items():
        (out / name).write_text(make(), encoding="utf-8")
        written[name] = out / name
    written["results.csv"] = _write_csv(out / "results.csv", results_rows(report))
    written["per_type.csv"] = _write_csv(out / "per_type.csv", per_type_rows(report))
    if plots:
        written.update({p.name: p for p in write_plots(report, out)})
    return written
