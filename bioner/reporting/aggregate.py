"""Runs grouped into settings, their statistics over seeds and folds, and the paired test.

A *setting* is a set of runs whose configs agree on every key except the ones that only name or
place a run (:data:`NOT_A_SETTING`) and the ones derived from the run's seed, fold or folder (a
key ending in ``seed`` that equals the run's seed, ``data.fold``, a path holding the run folder).
So by default ``seed`` and ``cv.fold`` are what a setting aggregates over, and a key that differs
between runs, whatever it is (``attack.epsilon``, ``module.lr``, ``cv.folds``), separates rows.
``--group-by`` keeps only the named keys or families; the other differing keys are then pooled,
and the report says which. Runs of different datasets are pooled only when asked
(``pool_datasets``).

Statistics of a metric over the ``n`` runs of a setting: the mean, the sample standard deviation
(``ddof=1``) and a 95% interval. With ``n > 1`` it is Student's t-interval
``mean +- t(0.975, n - 1) * std / sqrt(n)`` (the runs are the sample: it covers the mean over
seeds/folds, not one run's score). With ``n = 1`` it is that run's document-bootstrap interval
from ``metrics.json["<split>"]["ci95"]``, when the run computed one.

The paired test compares a setting A with its baseline B (the setting that matches the baseline
selector and agrees with A on every grouping key the selector does not name). Runs are matched by
``(seed, cv.fold)``: a run of A pairs with each run of B that shares one with it, an ensemble
(``bioner-eval ckpt_path=[...]``) counting each member's
(:attr:`~bioner.reporting.runs.Run.models`), so that the vote of seeds 1-3 stands against each
of the three single runs. The documents of all matched pairs are pooled (document ``d`` of seed
1 and ``d`` of seed 2 are two units) and :func:`bioner.evaluation.paired_bootstrap` tests "A's
strict F1 is higher than B's" on the pooled predictions. ``delta`` is pooled F1(A) - pooled
F1(B).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import t as student_t

from bioner.data.readers.base import SPLITS
from bioner.evaluation import paired_bootstrap, robustness_metrics
from bioner.reporting.runs import (
    STEP_GROUPS,
    GoldSource,
    ReportError,
    Run,
    ScoredSplit,
    find_runs,
)

log = logging.getLogger(__name__)

#: Config keys (and key prefixes) that name, place or display a run without changing what it
#: learns or how it is scored: never a reason for two runs to be different settings.
NOT_A_SETTING = (
    "seed",
    "cv.fold",
    "run_name",
    "run_dir",
    "ckpt_path",
    "task_name",
    "tags",
    "paths",
    "logger",
    "hydra",
    "bootstrap_samples",
    "dataset.data_dir",
    "dataset.download",
    "model.cache_dir",
    "data.num_workers",
    "data.eval_batch_size",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "callbacks.rich_progress_bar",
    "callbacks.lr_monitor",
)

#: The table's named columns: family (config group) -> the key that names its option.
FAMILIES = {
    "dataset": "dataset.name",
    "model": "model.name",
    "attack": "attack.name",
    "alignment": "alignment.label_strategy",
    "augmentation": "augmentation.name",
}
#: Short names accepted in ``--group-by`` and ``--baseline`` besides dotted config keys.
ALIASES = {**FAMILIES, "precision": "trainer.precision", "folds": "cv.folds"}

#: Metrics of the main table: ``metrics.json`` key -> column title.
MAIN_METRICS = {
    "precision": "P",
    "recall": "R",
    "f1": "F1",
    "entity_accuracy": "entity acc.",
    "exact_match_sentences": "exact match",
}
#: Span-score metrics of the calibration table: ``metrics.json["<split>"]["confidence"]`` key
#: -> column title. Neither depends on a threshold chosen on the reported split.
CONFIDENCE_METRICS = {"ece": "ECE", "average_precision": "AP"}
_MISSING = "<missing>"


def t_quantile(df: int, coverage: float = 0.95) -> float:
    """The ``t`` with ``P(|T| <= t) = coverage`` for Student's t with ``df`` degrees of freedom.

    scipy's ``t.ppf`` at the upper tail ``(1 + coverage) / 2``; this wrapper only checks its input,
    which scipy would answer with ``nan``. ``t_quantile(4) = 2.7764...``.
    """
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, not {df!r}")
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must lie strictly between 0 and 1, not {coverage!r}")
    return float(student_t.ppf((1 + coverage) / 2, df))


@dataclass(frozen=True)
class Stat:
    """A metric over the runs of a setting.

    Attributes:
        mean: the mean over runs.
        std: the sample standard deviation (``None`` for one run).
        n: the number of runs.
        low, high: the 95% interval (``None`` when there is none).
        interval: ``"t"`` (over runs), ``"bootstrap"`` (one run's document bootstrap) or ``""``.
    """

    mean: float
    std: float | None
    n: int
    low: float | None = None
    high: float | None = None
    interval: str = ""

    @classmethod
    def of(cls, values: Sequence[float], bootstrap: Sequence[float] | None = None) -> Stat:
        """Statistics of ``values`` (one per run); ``bootstrap`` is the interval used for one."""
        if not values:
            raise ValueError("no values to summarise")
        x = np.asarray(values, dtype=float)
        if len(x) == 1:
            if bootstrap:
                return cls(
                    float(x[0]), None, 1, float(bootstrap[0]), float(bootstrap[1]), "bootstrap"
                )
            return cls(float(x[0]), None, 1)
        mean, std = float(x.mean()), float(x.std(ddof=1))
        half = t_quantile(len(x) - 1) * std / math.sqrt(len(x))
        return cls(mean, std, len(x), mean - half, mean + half, "t")


@dataclass
class PairedTest:
    """A setting against its baseline (see the module docstring).

    Attributes:
        baseline: label of the baseline setting.
        pairs: matched pairs of runs used (an ensemble pairs with each member's run);
            ``unmatched``: runs without a partner.
        result: :func:`~bioner.evaluation.paired_bootstrap`'s dict (``None`` without pairs).
    """

    baseline: str
    pairs: int
    unmatched: int
    result: dict[str, Any] | None


@dataclass
class Setting:
    """One row of the report: the runs that share every grouping key.

    Attributes:
        values: grouping key -> value (the same in every run).
        runs: the runs, sorted by (fold, seed).
        columns: family -> text of the named columns (``dataset``, ``model``, ``attack`` ...)
            plus ``other`` for grouping keys outside the families.
        metrics: metric key -> statistics over runs, for the report's split.
        per_type: entity type -> ``{"f1" | "precision" | "recall" | "support": Stat}``.
        robustness: ``robustness/...`` key -> statistics over the runs that measured it.
        confidence: ``ece`` and ``average_precision`` of the runs' span scores
            (``metrics.json["<split>"]["confidence"]``, before post-processing) -> statistics
            over the runs that recorded them.
        wall_time_s: statistics of the runs' wall time, when recorded.
        train_sequences_per_s: statistics of the runs' training speed
            (:meth:`~bioner.reporting.runs.Run.train_sequences_per_s`), when recorded.
        is_baseline: this setting matches the baseline selector.
        baseline: the setting this one is tested against (``None`` for a baseline or without).
        test: the paired test against ``baseline``.
    """

    values: dict[str, Any]
    runs: list[Run]
    columns: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Stat] = field(default_factory=dict)
    per_type: dict[str, dict[str, Stat]] = field(default_factory=dict)
    robustness: dict[str, Stat] = field(default_factory=dict)
    confidence: dict[str, Stat] = field(default_factory=dict)
    wall_time_s: Stat | None = None
    train_sequences_per_s: Stat | None = None
    is_baseline: bool = False
    baseline: Setting | None = field(default=None, repr=False)
    test: PairedTest | None = None

    @property
    def label(self) -> str:
        """A one-line name: the named columns that are not empty, then the other keys."""
        parts = [self.columns[f] for f in FAMILIES if self.columns.get(f)]
        if self.columns.get("other"):
            parts.append(self.columns["other"])
        return " / ".join(parts)

    @property
    def replicates(self) -> str:
        """What the runs are: ``3 seeds``, ``5 folds``, ``2 seeds x 5 folds``; for ensembles
        ``1 vote of 3 models``."""
        if any(len(r.models) > 1 for r in self.runs):
            models = sorted({len(r.models) for r in self.runs})
            votes = len(self.runs)
            return f"{votes} vote{'s' * (votes != 1)} of {'/'.join(map(str, models))} models"
        seeds = {r.seed for r in self.runs}
        folds = {r.fold for r in self.runs if r.fold is not None}
        if not folds:
            return f"{len(seeds)} seed{'s' * (len(seeds) != 1)}"
        if len(seeds) == 1:
            return f"{len(folds)} fold{'s' * (len(folds) != 1)}"
        return f"{len(seeds)} seeds x {len(folds)} folds"


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def summarise_keys(keys: Sequence[str], most: int = 8) -> str:
    """``keys`` for a console line: every one up to ``most``; beyond that, the keys of each
    top-level config group with more than one counted together (``dataset.* (62 keys)``), as
    pooling corpora makes dozens of ``dataset`` keys differ."""
    if len(keys) <= most:
        return ", ".join(keys)
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".", 1)[0], []).append(key)
    return ", ".join(
        members[0] if len(members) == 1 else f"{top}.* ({len(members)} keys)"
        for top, members in groups.items()
    )


def _derived(key: str, runs: Iterable[Run]) -> bool:
    """Whether ``key`` holds, in every run that has it, a copy of the run's seed, fold or
    folder (``data.seed``, ``callbacks.reseed.seed``, ``data.fold``, checkpoint folders)."""
    leaf = key.rsplit(".", 1)[-1]
    for run in runs:
        if key not in run.flat:
            continue
        value, run_dir = run.flat[key], str(run.config.get("run_dir", run.path))
        if leaf.endswith("seed") and value == run.seed:
            continue
        if leaf == "fold" and value == run.fold:
            continue
        if isinstance(value, str) and run_dir and run_dir in value:
            continue
        return False
    return True


def _step_parameter(key: str) -> bool:
    """Whether ``key`` is a parameter of a step of a step group (``preprocess.spelling.x``)."""
    return any(key.startswith(group + ".") for group in STEP_GROUPS)


def differing_keys(runs: Sequence[Run], named: Sequence[str] = ()) -> list[str]:
    """Config keys whose values differ between ``runs``, except those that are no setting
    (:data:`NOT_A_SETTING`) unless ``named`` (``--group-by tags``: runs labelled by hand)."""
    keys = sorted({k for run in runs for k in run.flat})
    out = []
    for key in keys:
        if any(_under(key, p) for p in NOT_A_SETTING) and not any(_under(key, p) for p in named):
            continue
        # A step's parameter is missing from runs without the step; the step-group key tells
        # those runs apart, so the parameter differs only between runs that have the step.
        having = [r for r in runs if key in r.flat] if _step_parameter(key) else runs
        if len({_canon(run.flat.get(key, _MISSING)) for run in having}) > 1 and not _derived(
            key, runs
        ):
            out.append(key)
    return out


def _family_prefix(name: str) -> str:
    """``attack`` -> ``attack`` (the whole group); ``module.lr`` -> itself."""
    return name if name in FAMILIES else ALIASES.get(name, name)


def grouping_keys(
    runs: Sequence[Run], group_by: Sequence[str] | None, pool_datasets: bool = False
) -> tuple[list[str], list[str]]:
    """The keys that separate settings, and the differing keys pooled within them.

    Args:
        runs: the runs.
        group_by: family names (``dataset``, ``model``, ``attack``, ``alignment``,
            ``augmentation``), aliases (``precision``, ``folds``) or dotted config keys or
            prefixes; ``None``: every differing key.
        pool_datasets: allow runs of different datasets in one setting.

    Raises:
        ReportError: an unknown ``group_by`` name, ``seed``/``cv.fold`` named, or runs of
            different datasets that would be pooled without ``pool_datasets``.
    """
    if group_by is None:
        differing = differing_keys(runs)
        chosen = differing
    else:
        every = {k for run in runs for k in run.flat}
        prefixes = []
        for name in group_by:
            prefix = _family_prefix(name.strip())
            if prefix in ("seed", "cv.fold"):
                raise ReportError(
                    f"--group-by {name}: seeds and folds are what a setting aggregates over; "
                    "leave them out"
                )
            if not any(_under(k, prefix) for k in every):
                raise ReportError(
                    f"--group-by {name}: no config key {prefix!r} in the runs; use "
                    f"{', '.join(ALIASES)} or a dotted config key (e.g. module.lr)"
                )
            prefixes.append(prefix)
        differing = differing_keys(runs, prefixes)
        chosen = [k for k in differing if any(_under(k, p) for p in prefixes)]
    pooled = [k for k in differing if k not in chosen]
    datasets = [k for k in pooled if _under(k, "dataset")]
    if datasets and not pool_datasets:
        names = sorted({str(run.flat.get("dataset.name")) for run in runs})
        raise ReportError(
            f"runs of different datasets ({', '.join(names)}; they differ in "
            f"{summarise_keys(datasets)}) would share a row: add dataset to --group-by, or pass "
            "--pool-datasets to pool them on purpose"
        )
    if pooled:
        log.warning(
            "pooled within settings (differ between runs, not grouped; the notes of "
            "results.md name each): %s",
            summarise_keys(pooled),
        )
    return chosen, pooled


def _detail_keys(runs: Sequence[Run], keys: Sequence[str], family: str) -> dict[str, list[str]]:
    """Per option name of ``family``: its grouping keys whose values differ between runs of
    that option (``fgm`` -> ``[attack.epsilon]`` when two FGM epsilons were run). Keys absent
    from an option (an FGM epsilon next to ``attack=none``) do not make ``none`` show them."""
    label = FAMILIES[family]
    by_name: dict[str, list[Run]] = {}
    for run in runs:
        by_name.setdefault(_show(run.flat.get(label, "-")), []).append(run)
    out = {}
    for name, members in by_name.items():
        out[name] = [
            k
            for k in keys
            if _under(k, family)
            and k != label
            and not k.endswith("._target_")
            and len({_canon(r.flat.get(k, _MISSING)) for r in members}) > 1
        ]
    return out


def _column_text(runs: Sequence[Run], family: str, details: Mapping[str, list[str]]) -> str:
    """The text of a named column: the option's name (names joined by ``+`` when pooled), then
    ``key=value`` for its keys in ``details``; for attacks always the epsilon."""
    names = sorted({_show(r.flat.get(FAMILIES[family], "-")) for r in runs})
    extra = [k for name in names for k in details.get(name, [])]
    epsilon = f"{family}.epsilon"
    if family == "attack" and epsilon not in extra and any(epsilon in r.flat for r in runs):
        extra.insert(0, epsilon)
    parts = []
    for key in dict.fromkeys(extra):
        shown = sorted({_show(r.flat[key]) for r in runs if key in r.flat})
        if shown:
            parts.append(f"{key[len(family) + 1 :]}={'+'.join(shown)}")
    return "+".join(names) + (f" ({', '.join(parts)})" if parts else "")


def group_runs(runs: Sequence[Run], keys: Sequence[str]) -> list[Setting]:
    """Group ``runs`` by their values of ``keys``.

    Raises:
        ReportError: two runs of one setting share seed and fold (a duplicate run).
    """
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(_canon(run.flat.get(k, _MISSING)) for k in keys), []).append(run)
    details = {f: _detail_keys(runs, keys, f) for f in FAMILIES}
    settings = []
    for members in groups.values():
        members.sort(key=lambda r: (_canon(r.fold), _canon(r.seed)))
        seen: dict[tuple[str, str], Run] = {}
        for run in members:
            ident = (_canon(run.seed), _canon(run.fold))
            if ident in seen:
                raise ReportError(
                    f"{seen[ident].path} and {run.path} are the same setting with the same seed "
                    f"{run.seed} and fold {run.fold}: pass only one of them, or name the key that "
                    "tells them apart in --group-by"
                )
            seen[ident] = run
        values = {k: members[0].flat.get(k, _MISSING) for k in keys}
        setting = Setting(values, members)
        setting.columns = {f: _column_text(members, f, details[f]) for f in FAMILIES}
        other = [k for k in keys if not any(_under(k, f) for f in FAMILIES)]
        # A step's parameters are shown only where the setting has the step.
        other = [k for k in other if not (_step_parameter(k) and values[k] == _MISSING)]
        setting.columns["other"] = ", ".join(f"{k}={_show(values[k])}" for k in other)
        settings.append(setting)
    return settings


def _show(value: Any) -> str:
    return value if isinstance(value, str) else _canon(value)


def _stats_by_key(rows: Sequence[Mapping[str, float]], cis: Sequence[Mapping[str, Any]]) -> dict:
    keys = sorted({k for row in rows for k in row})
    out = {}
    for key in keys:
        values = [row[key] for row in rows if key in row]
        boot = cis[0].get(key) if len(values) == 1 and len(rows) == 1 else None
        out[key] = Stat.of(values, boot)
    return out


def summarise(setting: Setting, split: str, corpus: str | None = None) -> None:
    """Fill ``setting``'s metric, per-type, robustness and wall-time statistics (``corpus``: of
    that member corpus, see :meth:`~bioner.reporting.runs.Run.section`)."""
    sections = [run.section(split, corpus) for run in setting.runs]
    numeric = [
        {k: float(v) for k, v in s["metrics"].items() if isinstance(v, (int, float))}
        for s in sections
    ]
    setting.metrics = _stats_by_key(numeric, [s.get("ci95") or {} for s in sections])
    by_type: dict[str, list[dict[str, float]]] = {}
    for section in sections:
        for row in section.get("per_type") or []:
            # No gold mention: the type's F1 is undefined, not 0 (shown as "—"), e.g. a
            # Chemical+Disease model scored by an older bioner on a Chemical-only corpus.
            if row.get("support", 1) > 0:
                by_type.setdefault(row["type"], []).append(row)
    for type_, rows in sorted(by_type.items()):
        stats = {}
        for key in ("precision", "recall", "f1", "support"):
            boot = None
            if len(sections) == 1 and key != "support":
                boot = (sections[0].get("ci95") or {}).get(f"{key}_{type_}")
            stats[key] = Stat.of([float(r[key]) for r in rows], boot)
        setting.per_type[type_] = stats
    robust = [
        robustness_metrics(r.metrics["robustness"])
        for r in setting.runs
        if r.metrics.get("robustness")
    ]
    if robust:
        setting.robustness = _stats_by_key(robust, [{}] * len(robust))
    scores = [
        {k: float(s["confidence"][k]) for k in CONFIDENCE_METRICS if k in s["confidence"]}
        for s in sections
        if s.get("confidence")
    ]
    if scores:
        setting.confidence = _stats_by_key(scores, [{}] * len(scores))
    times = [t for t in (run.wall_time_s() for run in setting.runs) if t is not None]
    setting.wall_time_s = Stat.of(times) if times else None
    rates = [r for r in (run.train_sequences_per_s() for run in setting.runs) if r is not None]
    setting.train_sequences_per_s = Stat.of(rates) if rates else None


def parse_selector(text: str) -> dict[str, Any]:
    """``"attack=none,model=minilm"`` -> ``{"attack.name": "none", "model.name": "minilm"}``.

    Values are read as YAML scalars (``attack.epsilon=0.3`` matches the number 0.3).
    """
    out = {}
    # Commas inside brackets belong to a list value (tags=[study,thr]).
    for part in filter(None, (p.strip() for p in re.split(r",(?![^\[]*\])", text))):
        if "=" not in part:
            raise ReportError(f"--baseline {text!r}: write key=value pairs, e.g. attack=none")
        key, value = (s.strip() for s in part.split("=", 1))
        out[ALIASES.get(key, key)] = yaml.safe_load(value) if value else ""
    if not out:
        raise ReportError(f"--baseline {text!r}: empty selector; e.g. --baseline attack=none")
    return out


def _matches(run: Run, selector: Mapping[str, Any]) -> bool:
    return all(
        key in run.flat and (run.flat[key] == value or str(run.flat[key]) == str(value))
        for key, value in selector.items()
    )


def assign_baselines(settings: Sequence[Setting], selector: Mapping[str, Any], text: str) -> None:
    """Mark the baseline settings and give every other setting its baseline.

    A setting's baseline matches ``selector`` and agrees with it on every grouping key outside
    the selector's families (``attack=none`` frees every ``attack.*`` key) and outside the keys
    that copy a selector key: those equal to it in every run, as ``alignment.head`` is to
    ``module.head`` (``alignment.head: ${module.head}``).

    Raises:
        ReportError: no run matches the selector, or a setting has two candidate baselines.
    """
    matched = [s for s in settings if all(_matches(r, selector) for r in s.runs)]
    if not matched:
        shown = []
        for key in selector:
            values = sorted({_show(r.flat[key]) for s in settings for r in s.runs if key in r.flat})
            shown.append(f"{key}: {', '.join(values) or 'no run has this key'}")
        raise ReportError(f"--baseline {text}: matches no run; values present: {'; '.join(shown)}")
    free = [k.split(".", 1)[0] if k.split(".", 1)[0] in FAMILIES else k for k in selector]
    runs = [r for s in settings for r in s.runs]
    free += [
        key
        for key in {k for s in settings for k in s.values}
        if key not in selector
        and any(
            all(key in r.flat and chosen in r.flat and r.flat[key] == r.flat[chosen] for r in runs)
            for chosen in selector
        )
    ]

    def rest(setting: Setting) -> dict[str, Any]:
        return {
            k: _canon(v) for k, v in setting.values.items() if not any(_under(k, f) for f in free)
        }

    for setting in matched:
        setting.is_baseline = True
    for setting in settings:
        if setting.is_baseline:
            continue
        candidates = [b for b in matched if rest(b) == rest(setting)]
        if len(candidates) > 1:
            raise ReportError(
                f"--baseline {text}: setting {setting.label!r} has {len(candidates)} candidate "
                f"baselines ({'; '.join(c.label for c in candidates)}); make the selector "
                "narrower, e.g. add attack.epsilon=... or model=..."
            )
        setting.baseline = candidates[0] if candidates else None


def paired_test(
    setting: Setting,
    baseline: Setting,
    split: str,
    gold: GoldSource,
    n: int = 1000,
    seed: int = 0,
    cache: dict[Path, ScoredSplit] | None = None,
    corpus: str | None = None,
) -> PairedTest:
    """The paired bootstrap test of ``setting`` against ``baseline`` on matched runs' pooled
    predictions (module docstring).

    Raises:
        ReportError: matched runs scored different documents.
    """
    cache = {} if cache is None else cache

    def scored(run: Run) -> ScoredSplit:
        if run.path not in cache:
            cache[run.path] = gold.load(run, split, corpus)
        return cache[run.path]

    def models(run: Run) -> set[str]:
        return {_canon(model) for model in run.models}

    docs, pred_a, pred_b = [], [], []
    pairs, unmatched = 0, 0
    for run in setting.runs:
        partners = [b for b in baseline.runs if models(b) & models(run)]
        unmatched += not partners
        for partner in partners:
            a, b = scored(run), scored(partner)
            if sorted(a.ids) != sorted(b.ids):
                raise ReportError(
                    f"{run.path} and {partner.path} (seed {partner.seed}) scored different "
                    f"{split} documents, so they cannot be paired; compare runs on the same "
                    "documents"
                )
            b_spans = b.by_id()
            docs += a.gold
            pred_a += a.predictions
            pred_b += [b_spans[i][1] for i in a.ids]
            pairs += 1
    result = paired_bootstrap(docs, pred_a, pred_b, n=n, seed=seed) if pairs else None
    return PairedTest(baseline.label, pairs, unmatched, result)


@dataclass
class Report:
    """The cross-run results: settings with their statistics and tests.

    Attributes:
        settings: the rows, sorted by dataset, model, baseline first, then the other columns.
        split: the scored split (``test``, ``devel``, or ``train`` for runs that scored it).
        group_keys: the config keys that separate settings.
        pooled_keys: differing keys pooled within settings (``--group-by`` left them out).
        baseline: the baseline selector as given, or ``None``.
        gold_sources: where the paired test's gold came from (``corpus``, ``predictions file``).
        bootstrap_samples: samples of the paired test.
        corpus: the member corpus reported for runs of several (``dataset=multi``), or ``None``.
    """

    settings: list[Setting]
    split: str
    group_keys: list[str]
    pooled_keys: list[str]
    baseline: str | None
    gold_sources: set[str] = field(default_factory=set)
    bootstrap_samples: int = 1000
    corpus: str | None = None

    @property
    def entity_types(self) -> list[str]:
        return sorted({t for s in self.settings for t in s.per_type})


def build_report(
    paths: Sequence[str | Path],
    split: str = "test",
    baseline: str | None = None,
    group_by: Sequence[str] | None = None,
    pool_datasets: bool = False,
    data_dir: str | Path | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    corpus: str | None = None,
) -> Report:
    """Find the runs under ``paths``, group them into settings and compute every statistic.

    Args:
        paths: run folders and multirun folders.
        split: the split whose scores are reported (``test``; with ``cv.folds``, the held-out
            fold either way).
        baseline: a selector such as ``attack=none``; each other setting is tested against its
            baseline (module docstring). ``None``: no test.
        group_by: see :func:`grouping_keys`.
        pool_datasets: allow runs of different datasets in one row.
        data_dir: corpus folder for the paired test's gold (see
            :class:`~bioner.reporting.runs.GoldSource`).
        bootstrap_samples: samples of the paired bootstrap test.
        seed: seed of the paired bootstrap test.
        corpus: for runs of several corpora (``dataset=multi``), report member ``corpus`` only:
            its scores, and its documents in the paired test under the ids it has alone, so
            that such runs pair with runs of that corpus alone (whose whole split is reported).

    Raises:
        ReportError: see :func:`~bioner.reporting.runs.find_runs`, :func:`grouping_keys`,
            :func:`group_runs`, :func:`assign_baselines` and :func:`paired_test`.
    """
    if split not in SPLITS:
        raise ReportError(f"--split {split}: choose devel, test or train")
    runs = find_runs(paths)
    keys, pooled = grouping_keys(runs, group_by, pool_datasets)
    settings = group_runs(runs, keys)
    for setting in settings:
        summarise(setting, split, corpus)
    report = Report(
        [], split, keys, pooled, baseline, bootstrap_samples=bootstrap_samples, corpus=corpus
    )
    if baseline is not None:
        assign_baselines(settings, parse_selector(baseline), baseline)
        gold, cache = GoldSource(data_dir), {}
        for setting in settings:
            if setting.baseline is not None:
                setting.test = paired_test(
                    setting, setting.baseline, split, gold, bootstrap_samples, seed, cache, corpus
                )
        report.gold_sources = {s.gold_source for s in cache.values()}

    def order(setting: Setting) -> tuple:
        return (
            setting.columns["dataset"],
            setting.columns["model"],
            not setting.is_baseline,
            *(setting.columns[f] for f in ("attack", "alignment", "augmentation", "other")),
        )

    report.settings = sorted(settings, key=order)
    return report
