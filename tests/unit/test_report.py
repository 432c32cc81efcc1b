"""bioner-report on synthetic run folders: a toy IOB corpus, predictions with known errors, and
metrics.json sections computed by bioner's own evaluation, exactly as a run writes them."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bioner.data.document import Document, Span
from bioner.data.readers import IOBReader
from bioner.evaluation import bootstrap_ci, evaluate, paired_bootstrap
from bioner.inference.formats import read_jsonl, write_jsonl
from bioner.report import main
from bioner.reporting import (
    ReportError,
    Stat,
    archive_run,
    build_report,
    find_runs,
    t_quantile,
    to_latex,
    to_markdown,
    write_outputs,
)
from bioner.reporting.aggregate import parse_selector, summarise_keys
from bioner.reporting.render import confidence_table, main_table, per_type_table, results_rows

CHEMICALS = ["aspirin", "lithium", "cocaine", "haloperidol", "dopamine"]
DISEASES = ["seizures", "hypertension", "nephritis", "anemia"]
N_DOCS = 60


def write_corpus(folder: Path) -> None:
    """An IOB corpus: every sentence has one Chemical and one Disease mention."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "devel", "test"):
        lines = []
        for i in range(N_DOCS):
            chemical, disease = CHEMICALS[i % 5], DISEASES[i % 4]
            lines += [f"{chemical}\tB-Chemical", f"{split}{i}\tO", f"{disease}\tB-Disease", ".\tO"]
            lines.append("")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_corpus(root / "toy")
    write_corpus(root / "toy2")
    return root


def load(data_root: Path, split: str = "test", dataset: str = "toy") -> list[Document]:
    return IOBReader(dataset, data_root / dataset, ["Chemical", "Disease"]).load(split)


def predict(docs: list[Document], miss: float, seed: int) -> list[list[Span]]:
    """Gold spans, each missed with probability ``miss``; a spurious span with ``miss / 2``."""
    rng = np.random.default_rng(seed)
    out = []
    for doc in docs:
        spans = [s for s in doc.spans if rng.random() >= miss]
        if rng.random() < miss / 2:
            start, end = doc.words[1]
            spans.append(Span(start, end, "Chemical"))
        out.append(sorted(spans))
    return out


def make_run(
    root: Path,
    data_root: Path,
    name: str,
    docs: list[Document],
    preds: list[list[Span]],
    seed: int,
    attack: str = "none",
    epsilon: float | None = None,
    dataset: str = "toy",
    folds: int | None = None,
    fold: int | None = None,
    lr: float = 1e-4,
    robustness: dict[str, Any] | None = None,
    minutes: int = 3,
    preprocess: dict[str, Any] | None = None,
    speeds: list[float] | None = None,
    head: str | None = None,
    members: list[int] | None = None,
) -> Path:
    """A run folder as bioner-train writes it (the parts a report reads); with ``members``,
    as a bioner-eval ensemble of the runs of those seeds writes it (``seed`` the first's)."""
    run_dir = root / name
    attack_cfg: dict[str, Any] = {"name": attack}
    if attack != "none":
        attack_cfg = {"_target_": f"bioner.attacks.{attack.upper()}", "name": attack}
        attack_cfg["epsilon"] = epsilon
    config = {
        "task_name": "train",
        "seed": seed,
        "cv": {"folds": folds, "fold": fold},
        "run_name": name,
        "run_dir": str(run_dir),
        "data": {"seed": seed, "limit_documents": None, "folds": folds, "fold": fold},
        "module": {"lr": lr},
        "dataset": {
            "_target_": "bioner.data.readers.IOBReader",
            "name": dataset,
            "data_dir": f"{data_root}/{dataset}",
            "entity_types": ["Chemical", "Disease"],
        },
        "model": {"name": "tiny"},
        "alignment": {"label_strategy": "first"},
        "attack": attack_cfg,
        "augmentation": {"name": "none"},
        "trainer": {"default_root_dir": str(run_dir), "precision": "auto"},
        "callbacks": {
            "model_checkpoint": {"dirpath": f"{run_dir}/checkpoints"},
            "reseed": {"seed": seed},
        },
        "paths": {"data_dir": str(data_root)},
    }
    if preprocess is not None:
        config["preprocess"] = preprocess
    if head is not None:  # alignment.head: ${module.head}, resolved
        config["module"]["head"] = config["alignment"]["head"] = head
    if members is not None:  # as bioner-reporting reads a bioner-eval ensemble's config
        config["ensemble"] = {"members": len(members), "min_votes": "majority"}
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    evaluation = evaluate(docs, preds)
    section = {
        "documents": len(docs),
        "metrics": evaluation.metrics(),
        "per_type": evaluation.per_type(),
        "ci95": {k: list(v) for k, v in bootstrap_ci(docs, preds, n=50).items()},
        "confusion": {},
    }
    metrics: dict[str, Any] = {"run_name": name, "test": section, "devel": section}
    if robustness is not None:
        metrics["robustness"] = robustness
    if speeds is not None:
        metrics["train_sequences_per_s"] = speeds
    if members is not None:
        metrics["ensemble"] = {"member_seeds": members, "member_folds": [fold] * len(members)}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    write_jsonl(run_dir / "predictions" / "test.jsonl", docs, preds)
    (run_dir / "train.log").write_text(
        "[2026-01-02 10:00:00,000][bioner.runtime.run][INFO] - Run folder: x\n"
        f"[2026-01-02 10:{minutes:02d}:30,000][__main__][INFO] - Run folder: x\n"
    )
    return run_dir


def f1_of(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.json").read_text())["test"]["metrics"]["f1"]


@pytest.fixture
def study(tmp_path: Path, data_root: Path) -> dict[str, list[Path]]:
    """none (seeds 1-3), fgm at epsilon 0.1 (seeds 1-3, better), fgm at 0.5 (seed 1)."""
    docs = load(data_root)
    root = tmp_path / "multirun"
    runs: dict[str, list[Path]] = {"none": [], "fgm0.1": [], "fgm0.5": []}
    for seed in (1, 2, 3):
        runs["none"].append(
            make_run(root, data_root, f"{seed}_none", docs, predict(docs, 0.4, seed), seed)
        )
        runs["fgm0.1"].append(
            make_run(
                root / "nested",
                data_root,
                f"{seed}_fgm",
                docs,
                predict(docs, 0.1, 100 + seed),
                seed,
                "fgm",
                0.1,
                minutes=5,
                speeds=[10.0, 10.0 + 2 * seed],  # run means 11, 12, 13 sequences/s
            )
        )
    runs["fgm0.5"].append(
        make_run(root, data_root, "1_fgm05", docs, predict(docs, 0.3, 7), 1, "fgm", 0.5)
    )
    return runs


# ---------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("df", "coverage", "expected"),
    # Textbook two-sided critical values of Student's t.
    [
        (1, 0.95, 12.706),
        (2, 0.95, 4.303),
        (4, 0.95, 2.776),
        (9, 0.95, 2.262),
        (30, 0.95, 2.042),
        (10, 0.90, 1.812),
        (5, 0.99, 4.032),
    ],
)
def test_t_quantile_matches_tables(df: int, coverage: float, expected: float) -> None:
    assert t_quantile(df, coverage) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        t_quantile(0)
    with pytest.raises(ValueError, match="coverage"):
        t_quantile(3, 1.0)


def test_stat_over_runs_is_a_t_interval_and_one_run_keeps_its_bootstrap() -> None:
    values = [0.80, 0.83, 0.81]
    stat = Stat.of(values)
    std = float(np.std(values, ddof=1))
    half = 4.303 * std / math.sqrt(3)
    assert (stat.mean, stat.n, stat.interval) == (pytest.approx(np.mean(values)), 3, "t")
    assert stat.std == pytest.approx(std)
    assert (stat.low, stat.high) == (
        pytest.approx(0.8133333 - half, abs=1e-3),
        pytest.approx(0.8133333 + half, abs=1e-3),
    )
    one = Stat.of([0.8], bootstrap=[0.7, 0.9])
    assert (one.std, one.low, one.high, one.interval) == (None, 0.7, 0.9, "bootstrap")
    assert Stat.of([0.8]).low is None


# ---------------------------------------------------------------------- finding runs


def test_find_runs_at_any_depth_once_and_warns_about_unfinished(
    study: dict[str, list[Path]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unfinished = tmp_path / "multirun" / "9_running"
    (unfinished / ".hydra").mkdir(parents=True)
    (unfinished / "config.yaml").write_text("seed: 9\n")
    (unfinished / ".hydra" / "config.yaml").write_text("seed: 9\n")
    with caplog.at_level(logging.WARNING):
        runs = find_runs([tmp_path / "multirun", study["fgm0.1"][0]])
    assert len(runs) == 7
    assert "1 unfinished run(s)" in caplog.text and "9_running" in caplog.text


def test_clear_errors_for_missing_paths_and_folders_without_runs(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does not exist"):
        find_runs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no metrics.json found under"):
        find_runs([tmp_path / "empty"])
    run = tmp_path / "bad"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    with pytest.raises(ReportError, match="no config.yaml"):
        find_runs([run])


@pytest.mark.parametrize("samples", ["0", "-5"])
def test_bootstrap_samples_must_be_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture, samples: str
) -> None:
    # Accepted before, then a ValueError from the bootstrap once a baseline was compared.
    with pytest.raises(SystemExit) as done:
        main([str(tmp_path), "--bootstrap-samples", samples])
    assert done.value.code == 2
    assert f"--bootstrap-samples must be positive, not {samples}" in capsys.readouterr().err


# ---------------------------------------------------------------------- settings


def test_one_row_per_setting_with_statistics_over_seeds(
    study: dict[str, list[Path]], tmp_path: Path
) -> None:
    report = build_report([tmp_path / "multirun"])
    # Seeds, run folders and their copies (data.seed, checkpoint folders) separate nothing.
    assert report.group_keys == ["attack._target_", "attack.epsilon", "attack.name"]
    assert [s.columns["attack"] for s in report.settings] == [
        "fgm (epsilon=0.1)",
        "fgm (epsilon=0.5)",
        "none",
    ]
    by_attack = {s.columns["attack"]: s for s in report.settings}
    none = by_attack["none"]
    f1s = [f1_of(r) for r in study["none"]]
    assert none.replicates == "3 seeds"
    assert none.metrics["f1"].mean == pytest.approx(np.mean(f1s))
    assert none.metrics["f1"].std == pytest.approx(np.std(f1s, ddof=1))
    assert none.metrics["f1"].interval == "t"
    chemical = [
        next(
            r["f1"]
            for r in json.loads((p / "metrics.json").read_text())["test"]["per_type"]
            if r["type"] == "Chemical"
        )
        for p in study["none"]
    ]
    assert none.per_type["Chemical"]["f1"].mean == pytest.approx(np.mean(chemical))
    # One run: its own bootstrap interval.
    single = by_attack["fgm (epsilon=0.5)"]
    ci = json.loads((study["fgm0.5"][0] / "metrics.json").read_text())["test"]["ci95"]["f1"]
    assert (single.metrics["f1"].low, single.metrics["f1"].high) == tuple(ci)
    assert by_attack["fgm (epsilon=0.1)"].wall_time_s.mean == pytest.approx(330.0)
    # Training speed: each run's mean over epochs, then over runs; absent where not recorded.
    speed = by_attack["fgm (epsilon=0.1)"].train_sequences_per_s
    assert (speed.mean, speed.std, speed.n) == pytest.approx((12.0, 1.0, 3))
    assert none.train_sequences_per_s is None
    header, rows = main_table(report)
    column = header.index("training seq/s")
    assert [row[column] for row in rows] == ["12.0 ± 1.0", "—", "—"]


def test_summarise_keys_counts_a_group_of_many() -> None:
    few = ["module.lr", "attack.epsilon"]
    assert summarise_keys(few) == "module.lr, attack.epsilon"
    many = [f"dataset.corpora.gold.k{i}" for i in range(9)] + ["attack.epsilon", "postprocess"]
    assert summarise_keys(many) == "dataset.* (9 keys), attack.epsilon, postprocess"
    assert summarise_keys(many, most=11) == ", ".join(many)


def test_group_by_pools_other_keys_and_says_so(
    tmp_path: Path, data_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    docs = load(data_root)
    for seed, lr in ((1, 1e-4), (2, 2e-4)):
        make_run(tmp_path / "r", data_root, f"{seed}", docs, predict(docs, 0.2, seed), seed, lr=lr)
    assert build_report([tmp_path / "r"]).group_keys == ["module.lr"]
    with caplog.at_level(logging.WARNING):
        report = build_report([tmp_path / "r"], group_by=["attack"])
    assert len(report.settings) == 1 and report.settings[0].replicates == "2 seeds"
    assert report.pooled_keys == ["module.lr"]
    assert "module.lr" in caplog.text and "not grouped): module.lr" in to_markdown(report)
    with pytest.raises(ReportError, match="no config key 'nonsense'"):
        build_report([tmp_path / "r"], group_by=["nonsense"])
    with pytest.raises(ReportError, match="seeds and folds"):
        build_report([tmp_path / "r"], group_by=["seed"])


def test_datasets_are_pooled_only_when_asked(tmp_path: Path, data_root: Path) -> None:
    for dataset in ("toy", "toy2"):
        docs = load(data_root, dataset=dataset)
        make_run(
            tmp_path / "r", data_root, dataset, docs, predict(docs, 0.2, 1), 1, dataset=dataset
        )
    assert len(build_report([tmp_path / "r"]).settings) == 2
    with pytest.raises(ReportError, match="different datasets .*--pool-datasets"):
        build_report([tmp_path / "r"], group_by=["model"])
    with pytest.raises(ReportError, match="same seed 1"):
        # Pooled, the two runs are one setting with seed 1 twice.
        build_report([tmp_path / "r"], group_by=["model"], pool_datasets=True)


def test_runs_labelled_by_tags_are_settings_when_grouped_by_tags(
    tmp_path: Path, data_root: Path
) -> None:
    # Two arms that differ only in data no key names (another model's predictions, per seed):
    # the runs are labelled by hand with tags=[...], which is no setting unless grouped by.
    docs = load(data_root)
    for arm, miss in (("all", 0.4), ("thr", 0.1)):
        for seed in (1, 2):
            run = make_run(
                tmp_path / "r", data_root, f"{arm}{seed}", docs, predict(docs, miss, seed), seed
            )
            config = yaml.safe_load((run / "config.yaml").read_text())
            config["tags"] = ["study", arm]
            (run / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ReportError, match="same seed 1"):
        build_report([tmp_path / "r"])
    report = build_report(
        [tmp_path / "r"], group_by=["tags"], baseline="tags=[study, all]", bootstrap_samples=50
    )
    assert report.group_keys == ["tags"]
    by_tags = {str(s.runs[0].flat["tags"]): s for s in report.settings}
    assert by_tags["['study', 'all']"].is_baseline
    test = by_tags["['study', 'thr']"].test
    assert test is not None and test.pairs == 2 and test.result["delta"] > 0
    assert parse_selector("tags=[a,b],attack=none") == {"tags": ["a", "b"], "attack.name": "none"}


def test_missing_split_is_an_error(study: dict[str, list[Path]], tmp_path: Path) -> None:
    metrics_file = study["none"][0] / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    del metrics["test"]
    metrics_file.write_text(json.dumps(metrics))
    with pytest.raises(ReportError, match="no 'test' section.*--split"):
        build_report([tmp_path / "multirun"])


# ---------------------------------------------------------------------- paired test


def test_paired_test_pools_matched_seeds_against_the_baseline(
    study: dict[str, list[Path]], tmp_path: Path, data_root: Path
) -> None:
    report = build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=200)
    assert report.gold_sources == {"corpus"}
    by_attack = {s.columns["attack"]: s for s in report.settings}
    assert by_attack["none"].is_baseline and by_attack["none"].test is None
    test = by_attack["fgm (epsilon=0.1)"].test
    assert test is not None and test.pairs == 3 and test.unmatched == 0
    # The same test by hand: seed i of fgm against seed i of none, documents pooled.
    gold, pred_a, pred_b = [], [], []
    for a, b in zip(study["fgm0.1"], study["none"]):
        records_a = read_jsonl(a / "predictions" / "test.jsonl")
        records_b = {r["id"]: r for r in read_jsonl(b / "predictions" / "test.jsonl")}
        gold += [Document(r["id"], r["text"], r["gold"]) for r in records_a]
        pred_a += [r["spans"] for r in records_a]
        pred_b += [records_b[r["id"]]["spans"] for r in records_a]
    expected = paired_bootstrap(gold, pred_a, pred_b, n=200, seed=0)
    assert test.result["delta"] == pytest.approx(expected["delta"])
    assert test.result["p_value"] == expected["p_value"]
    assert test.result["delta"] > 0.1 and test.result["p_value"] < 0.05
    # A worse system against the same baseline is not significantly better.
    single = by_attack["fgm (epsilon=0.5)"].test
    assert (single.pairs, single.unmatched) == (1, 0)
    markdown = to_markdown(report)
    assert "baseline" in markdown and f"{test.result['delta']:+.4f}" in markdown


def test_unpaired_seeds_are_counted_not_hidden(
    study: dict[str, list[Path]], tmp_path: Path, data_root: Path
) -> None:
    docs = load(data_root)
    make_run(tmp_path / "multirun", data_root, "4_fgm", docs, predict(docs, 0.1, 4), 4, "fgm", 0.1)
    report = build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=50)
    fgm = next(s for s in report.settings if s.columns["attack"] == "fgm (epsilon=0.1)")
    assert (fgm.test.pairs, fgm.test.unmatched) == (3, 1)
    assert "(3 of 4 runs paired)" in to_markdown(report)


def test_span_scores_are_summarised_where_runs_recorded_them(
    study: dict[str, list[Path]], tmp_path: Path
) -> None:
    assert confidence_table(build_report([tmp_path / "multirun"])) is None  # none recorded
    for seed, run_dir in enumerate(study["none"], start=1):
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics["test"]["confidence"] = {"ece": 0.1 * seed, "average_precision": 0.7, "spans": 9}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    report = build_report([tmp_path / "multirun"])
    header, rows = confidence_table(report)
    assert header == ["setting", "runs", "ECE", "AP"]
    by_label = {row[0]: row[1:] for row in rows}
    none = next(s for s in report.settings if s.columns["attack"] == "none")
    assert by_label[none.label] == ["3", "0.200 ± 0.100", "0.700 ± 0.000"]
    fgm = next(s for s in report.settings if s.columns["attack"].startswith("fgm (epsilon=0.5"))
    assert fgm.confidence == {} and by_label[fgm.label] == ["0", "—", "—"]
    row = next(r for r in results_rows(report) if r["setting"] == none.label)
    assert row["confidence/ece_mean"] == pytest.approx(0.2) and row["confidence/ece_n"] == 3
    assert "## Span scores" in to_markdown(report) and "calibration error" in to_latex(report)


def test_an_ensemble_pairs_with_each_members_run(tmp_path: Path, data_root: Path) -> None:
    """The vote of seeds 1-3 stands against each of the three single runs, documents pooled;
    ``ensemble=none`` selects the single runs, and one run pairs with an ensemble baseline."""
    docs, root = load(data_root), tmp_path / "runs"
    singles = [
        make_run(root, data_root, f"{seed}_single", docs, predict(docs, 0.4, seed), seed)
        for seed in (1, 2, 3)
    ]
    voted = predict(docs, 0.1, 50)
    make_run(root, data_root, "vote", docs, voted, 1, members=[1, 2, 3])
    make_run(root, data_root, "vote_45", docs, predict(docs, 0.1, 51), 4, members=[4, 5])
    report = build_report([root], baseline="ensemble=none", bootstrap_samples=200)
    by_vote = {s.values["ensemble"]: s for s in report.settings}
    assert set(by_vote) == {"none", "majority of 3", "majority of 2"}
    assert by_vote["none"].is_baseline and by_vote["majority of 3"].columns["other"] == (
        "ensemble=majority of 3"
    )
    test = by_vote["majority of 3"].test
    assert test is not None and (test.pairs, test.unmatched) == (3, 0)
    row = next(r for r in results_rows(report) if r["setting"] == by_vote["majority of 3"].label)
    assert (row["paired_runs"], row["unpaired_runs"], row["pairs"]) == (1, 0, 3)
    gold, pred_a, pred_b = [], [], []
    for single in singles:
        records = read_jsonl(single / "predictions" / "test.jsonl")
        gold += [Document(r["id"], r["text"], r["gold"]) for r in records]
        pred_a += voted
        pred_b += [r["spans"] for r in records]
    expected = paired_bootstrap(gold, pred_a, pred_b, n=200, seed=0)
    assert test.result == expected
    # An ensemble of seeds without a single run is counted, not paired by its first seed.
    assert by_vote["majority of 2"].test.unmatched == 1
    assert "(0 of 1 runs paired)" in to_markdown(report)
    # The other way round: seed 2's run pairs with the vote that it is a member of.
    report = build_report(
        [*singles, root / "vote"], baseline="ensemble=majority of 3", bootstrap_samples=50
    )
    single = next(s for s in report.settings if s.values["ensemble"] == "none")
    assert (single.test.pairs, single.test.unmatched) == (3, 0)


def test_baseline_that_matches_nothing_is_an_error(
    study: dict[str, list[Path]], tmp_path: Path
) -> None:
    with pytest.raises(ReportError, match="matches no run.*attack.name: fgm, none"):
        build_report([tmp_path / "multirun"], baseline="attack=pgd")
    with pytest.raises(ReportError, match="key=value"):
        build_report([tmp_path / "multirun"], baseline="none")


def test_baseline_is_chosen_per_other_columns(tmp_path: Path, data_root: Path) -> None:
    for dataset, attack in (("toy", "none"), ("toy", "fgm"), ("toy2", "fgm")):
        docs = load(data_root, dataset=dataset)
        eps = None if attack == "none" else 0.1
        preds = predict(docs, 0.2, 1)
        make_run(
            tmp_path / "r",
            data_root,
            f"{dataset}_{attack}",
            docs,
            preds,
            1,
            attack,
            eps,
            dataset=dataset,
        )
    report = build_report([tmp_path / "r"], baseline="attack=none", bootstrap_samples=20)
    by_name = {(s.columns["dataset"], s.columns["attack"]): s for s in report.settings}
    assert by_name["toy", "fgm (epsilon=0.1)"].test.pairs == 1
    assert by_name["toy2", "fgm (epsilon=0.1)"].test is None  # no toy2 baseline
    assert "no baseline setting shares" in to_markdown(report)


def test_preprocess_steps_are_one_value_and_their_parameters_still_separate(
    tmp_path: Path, data_root: Path
) -> None:
    shorthand = {"_target_": "bioner.preprocess.ShorthandExpander", "shipped": True}
    spelling = {"_target_": "bioner.preprocess.SpellingCorrector", "min_length": 5}
    variants = {
        "none": {},
        "both": {"shorthand": shorthand, "spelling": spelling},
        "both4": {"shorthand": shorthand, "spelling": {**spelling, "min_length": 4}},
    }
    docs = load(data_root)
    for name, preprocess in variants.items():
        for seed in (1, 2):
            preds = predict(docs, 0.2, seed)
            make_run(
                tmp_path / "r", data_root, f"{name}_s{seed}", docs, preds, seed,
                preprocess=preprocess,
            )  # fmt: skip
    report = build_report([tmp_path / "r"], baseline="preprocess=none", bootstrap_samples=20)
    others = sorted(s.columns["other"] for s in report.settings)
    # Runs without a step are not told apart by that step's <missing> parameters.
    assert others == [
        "preprocess=none",
        "preprocess=shorthand+spelling, preprocess.spelling.min_length=4",
        "preprocess=shorthand+spelling, preprocess.spelling.min_length=5",
    ]
    tested = [s for s in report.settings if not s.is_baseline]
    assert len(tested) == 2 and all(s.test.pairs == 2 for s in tested)


def test_a_key_that_copies_the_baseline_s_key_is_freed_with_it(
    tmp_path: Path, data_root: Path
) -> None:
    docs = load(data_root)
    for head in ("flat", "crf"):
        for seed in (1, 2):
            preds = predict(docs, 0.2, seed)
            make_run(tmp_path / "r", data_root, f"{head}_s{seed}", docs, preds, seed, head=head)
    report = build_report([tmp_path / "r"], baseline="module.head=flat", bootstrap_samples=20)
    [tested] = [s for s in report.settings if not s.is_baseline]
    assert tested.values["alignment.head"] == "crf" and tested.test.pairs == 2


def test_ambiguous_baseline_is_an_error(study: dict[str, list[Path]], tmp_path: Path) -> None:
    # Both FGM epsilons match attack=fgm and differ only in the attack keys the selector frees.
    with pytest.raises(ReportError, match="2 candidate baselines.*narrower"):
        build_report([tmp_path / "multirun"], baseline="attack=fgm")
    narrow = build_report(
        [tmp_path / "multirun"], baseline="attack=fgm,attack.epsilon=0.1", bootstrap_samples=20
    )
    assert [s.columns["attack"] for s in narrow.settings if s.is_baseline] == ["fgm (epsilon=0.1)"]


def test_gold_comes_from_the_corpus_else_from_the_predictions_file(
    study: dict[str, list[Path]], tmp_path: Path, data_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    moved = tmp_path / "moved"
    data_root.rename(moved)
    with caplog.at_level(logging.WARNING):
        report = build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=50)
    assert report.gold_sources == {"predictions file"} and "--data-dir" in caplog.text
    again = build_report(
        [tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=50, data_dir=moved
    )
    assert again.gold_sources == {"corpus"}
    deltas = [s.test.result["delta"] for s in report.settings if s.test]
    assert deltas == [s.test.result["delta"] for s in again.settings if s.test]
    # A corpus that disagrees with the stored gold is an error, not a silent re-scoring.
    test_file = moved / "toy" / "test.tsv"
    test_file.write_text(test_file.read_text().replace("B-Disease", "O", 1))
    with pytest.raises(ReportError, match="gold spans stored with the predictions differ"):
        build_report([tmp_path / "multirun"], baseline="attack=none", data_dir=moved)


def test_archived_runs_report_the_same_without_the_corpus_text(
    study: dict[str, list[Path]], tmp_path: Path, data_root: Path
) -> None:
    """archive_run keeps config, metrics and text-free test predictions; the report on the
    archive is the report on the runs, the corpus giving text and gold back (checked by hash)."""
    archive = tmp_path / "archive"
    for run_dir in (r for runs in study.values() for r in runs):
        archive_run(run_dir, archive / run_dir.name)
    kept = archive / "1_none" / "predictions" / "test.jsonl.gz"
    records = [json.loads(line) for line in gzip.decompress(kept.read_bytes()).splitlines()]
    assert len(records) == N_DOCS and not any("text" in r or "gold" in r for r in records)
    assert {tuple(r) for r in records} == {("id", "text_sha256", "spans")}
    assert {len(r["text_sha256"]) for r in records} == {16}  # a prefix of the SHA-256
    source = {r["id"]: r for r in read_jsonl(study["none"][0] / "predictions" / "test.jsonl")}
    assert [[Span(*s) for s in r["spans"]] for r in records] == [
        source[r["id"]]["spans"] for r in records
    ]
    assert sorted(p.name for p in (archive / "1_none").rglob("*")) == [
        "config.yaml", "metrics.json", "predictions", "test.jsonl.gz", "train.log"
    ]  # fmt: skip
    original = build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=100)
    archived = build_report([archive], baseline="attack=none", bootstrap_samples=100)
    assert to_markdown(archived) == to_markdown(original).replace(
        str(tmp_path / "multirun"), str(archive)
    )
    assert [s.test.result for s in archived.settings if s.test] == [
        s.test.result for s in original.settings if s.test
    ]
    # Archiving an archive copies it byte for byte; a folder that is not a finished run is an
    # error.
    archive_run(archive / "1_none", tmp_path / "again")
    assert (tmp_path / "again/predictions/test.jsonl.gz").read_bytes() == kept.read_bytes()
    with pytest.raises(ReportError, match="not a finished run"):
        archive_run(tmp_path, tmp_path / "x")
    with pytest.raises(ReportError, match="no predictions on devel"):
        archive_run(study["none"][0], tmp_path / "x", splits=["devel"])
    # A document the corpus lacks, a text that is not the corpus's, no corpus: each an error.
    original_bytes = kept.read_bytes()
    lines = gzip.decompress(original_bytes).decode()
    kept.write_bytes(gzip.compress(lines.replace('"id":"test-0"', '"id":"test-x"', 1).encode()))
    with pytest.raises(ReportError, match="no document of that id in corpus toy"):
        build_report([archive], baseline="attack=none", bootstrap_samples=50)
    kept.write_bytes(original_bytes)
    test_file = data_root / "toy" / "test.tsv"
    test_file.write_text(test_file.read_text().replace("aspirin", "Aspirin", 1))
    with pytest.raises(ReportError, match="SHA-256 of corpus toy's document"):
        build_report([archive], baseline="attack=none", bootstrap_samples=50)
    data_root.rename(tmp_path / "gone")
    with pytest.raises(ReportError, match="text-free record .* needs the corpus"):
        build_report([archive], baseline="attack=none", bootstrap_samples=50)


def test_a_run_config_may_name_only_a_bioner_reader(
    study: dict[str, list[Path]], tmp_path: Path
) -> None:
    for run_dir in (r for runs in study.values() for r in runs):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config["dataset"]["_target_"] = "torch.load"
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ReportError, match="refusing dataset._target_='torch.load'"):
        build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=50)
    # Nor anything nested in the reader's config, which instantiate would build as well.
    for run_dir in (r for runs in study.values() for r in runs):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config["dataset"]["_target_"] = "bioner.data.readers.IOBReader"
        config["dataset"]["filter"] = {"_target_": "os.system", "command": "touch pwned"}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ReportError, match="refusing dataset.filter._target_='os.system'"):
        build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=50)
    # dataset=multi nests its member readers, each checked as a reader itself.
    for member, match in (
        ({"_target_": "os.system", "command": "touch pwned"}, r"corpora.b._target_='os.system'"),
        (
            {"_target_": "bioner.data.readers.IOBReader", "filter": {"_target_": "os.system"}},
            r"refusing dataset.corpora.b.filter._target_='os.system'",
        ),
    ):
        for run_dir in (r for runs in study.values() for r in runs):
            config = yaml.safe_load((run_dir / "config.yaml").read_text())
            reader = {"_target_": "bioner.data.readers.IOBReader", "name": "a"}
            config["dataset"] = {
                "_target_": "bioner.data.readers.MultiCorpusReader",
                "corpora": {"a": reader, "b": member},
            }
            (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        with pytest.raises(ReportError, match=match):
            build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=50)
    assert not Path("pwned").exists()


# ---------------------------------------------------------------------- k-fold, robustness


def test_k_fold_runs_aggregate_over_folds_and_pair_by_fold(tmp_path: Path, data_root: Path) -> None:
    pooled = load(data_root, "train") + load(data_root, "devel")
    for fold in range(3):
        held_out = pooled[fold::3]
        for attack, miss in (("none", 0.4), ("fgm", 0.1)):
            make_run(
                tmp_path / "cv",
                data_root,
                f"{attack}_{fold}",
                held_out,
                predict(held_out, miss, fold),
                1,
                attack,
                0.1 if attack == "fgm" else None,
                folds=3,
                fold=fold,
            )
    report = build_report([tmp_path / "cv"], baseline="attack=none", bootstrap_samples=50)
    fgm = next(s for s in report.settings if not s.is_baseline)
    assert fgm.replicates == "3 folds"
    assert fgm.per_type["Disease"]["f1"].n == 3 and fgm.per_type["Disease"]["f1"].interval == "t"
    assert fgm.test.pairs == 3 and report.gold_sources == {"corpus"}
    f1s = [f1_of(tmp_path / "cv" / f"fgm_{fold}") for fold in range(3)]
    assert fgm.metrics["f1"].mean == pytest.approx(np.mean(f1s))


def robustness(clean: float, fgsm: list[float], typo: float) -> dict[str, Any]:
    return {
        "f1_clean": clean,
        "embedding": {
            "fgsm": {"epsilons": [0.01, 0.02], "f1": fgsm, "drop": [clean - f for f in fgsm]}
        },
        "text": {"typos_inside": {"f1": typo, "drop": clean - typo, "flip_rate": 0.1}},
    }


def test_robustness_drops_and_outputs(tmp_path: Path, data_root: Path) -> None:
    docs = load(data_root)
    for seed in (1, 2):
        make_run(
            tmp_path / "r",
            data_root,
            f"{seed}",
            docs,
            predict(docs, 0.2, seed),
            seed,
            robustness=robustness(0.8, [0.7, 0.5 + seed / 10], 0.75),
        )
    report = build_report([tmp_path / "r"])
    stats = report.settings[0].robustness
    assert stats["robustness/embedding/fgsm/0.02/drop"].mean == pytest.approx(0.8 - 0.65)
    assert stats["robustness/text/typos_inside/drop"].mean == pytest.approx(0.05)
    markdown = to_markdown(report)
    assert "drop typos_inside" in markdown and "drop fgsm ε=0.02" in markdown
    written = write_outputs(report, tmp_path / "out")
    assert set(written) == {
        "results.md",
        "results.tex",
        "results.csv",
        "per_type.csv",
        "per_type_f1.png",
        "f1_vs_epsilon.png",
        "wall_time.png",
    }
    for name in ("per_type_f1.png", "f1_vs_epsilon.png", "wall_time.png"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(written["results.csv"].open()))
    assert len(rows) == 1
    assert float(rows[0]["f1_mean"]) == pytest.approx(report.settings[0].metrics["f1"].mean)
    assert float(rows[0]["robustness/text/typos_inside/drop_mean"]) == pytest.approx(0.05)
    per_type = list(csv.DictReader(written["per_type.csv"].open()))
    assert {(r["type"], r["metric"]) for r in per_type} >= {("Chemical", "f1"), ("Disease", "f1")}


def test_runs_at_different_precisions_are_noted(
    study: dict[str, list[Path]], tmp_path: Path
) -> None:
    """trainer.precision=auto resolves by hardware: a table whose runs came from different
    machines says how many trained at each precision; one precision throughout says nothing."""

    def set_precision(run_dir: Path, precision: str) -> None:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics["precision"] = precision
        (run_dir / "metrics.json").write_text(json.dumps(metrics))

    runs = [r for rs in study.values() for r in rs]
    for run_dir in runs:
        set_precision(run_dir, "32-true")
    assert "precisions" not in to_markdown(build_report([tmp_path / "multirun"]))
    for run_dir in study["none"][:2]:
        set_precision(run_dir, "bf16-mixed")
    markdown = to_markdown(build_report([tmp_path / "multirun"]))
    assert "runs per precision: 32-true: 5, bf16-mixed: 2)" in markdown


def test_latex_is_booktabs_and_escaped(study: dict[str, list[Path]], tmp_path: Path) -> None:
    latex = to_latex(
        build_report([tmp_path / "multirun"], baseline="attack=none", bootstrap_samples=20)
    )
    assert "\\toprule" in latex and "\\midrule" in latex and "\\bottomrule" in latex
    assert "$\\pm$" in latex and "95\\% CI" in latex and "wall\\_time\\_s" in latex
    body = latex.split("\\midrule")[1].split("\\bottomrule")[0]
    assert body.count("\\\\") == 3  # one line per setting


# ---------------------------------------------------------------------- command line


def test_command_line_prints_and_writes(
    study: dict[str, list[Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "report"
    status = main(
        [
            str(tmp_path / "multirun"),
            "--baseline",
            "attack=none",
            "--out",
            str(out),
            "--bootstrap-samples",
            "50",
            "--no-plots",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert printed.strip() == (out / "results.md").read_text().strip()
    assert not list(out.glob("*.png"))
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "nope")])
    assert exit_.value.code == 2
    assert "bioner-report: error: " in capsys.readouterr().err
    default = main([str(tmp_path / "multirun"), "--no-plots"])
    assert default == 0 and (tmp_path / "multirun" / "report" / "results.md").is_file()
    # One run folder is left as it is: its report goes to reports/<run> under the working folder.
    one = next(p.parent for p in (tmp_path / "multirun").glob("*/metrics.json"))
    before = sorted(p.name for p in one.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main([str(one), "--no-plots"]) == 0
    assert (tmp_path / "reports" / one.name / "results.md").is_file()
    assert sorted(p.name for p in one.iterdir()) == before


def test_a_type_without_gold_shows_a_dash_not_zero(tmp_path: Path, data_root: Path) -> None:
    # A run scored on a corpus without Disease mentions (predictions of Disease all false
    # positives, as bioner-eval wrote before it scored the shared types only).
    docs = [
        Document(d.id, d.text, [s for s in d.spans if s.label != "Disease"], d.sentences, d.words)
        for d in load(data_root)
    ]
    preds = predict(load(data_root), 0.2, 1)
    make_run(tmp_path / "r", data_root, "chem_only", docs, preds, 1)
    report = build_report([tmp_path / "r"])
    (setting,) = report.settings
    assert "Disease" not in setting.per_type and "Chemical" in setting.per_type
    header, rows = per_type_table(report)
    assert header == ["setting", "runs", "Chemical"]


def test_dashboards_log_robustness_under_the_keys_the_report_reads(
    tmp_path: Path, data_root: Path
) -> None:
    from bioner.runtime.finish import log_robustness

    class Recorder:
        def __init__(self) -> None:
            self.logged: dict[str, float] = {}

        def log_metrics(self, metrics: dict[str, float]) -> None:
            self.logged.update(metrics)

    section = robustness(0.8, [0.7, 0.6], 0.75)
    recorder = Recorder()
    log_robustness([recorder], section, None)  # type: ignore[list-item]
    docs = load(data_root)
    make_run(tmp_path / "r", data_root, "1", docs, predict(docs, 0.2, 1), 1, robustness=section)
    stats = build_report([tmp_path / "r"]).settings[0].robustness
    assert set(recorder.logged) == set(stats)
    assert all(recorder.logged[k] == pytest.approx(stats[k].mean) for k in stats)
    assert recorder.logged["robustness/embedding/fgsm/0.01/f1"] == pytest.approx(0.7)
