"""bioner-report end to end on real tiny runs: a multirun of two attacks x two seeds with
robustness, then the command on its folder, checked against the runs' own files."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bioner.data.document import Document
from bioner.evaluation import evaluate
from bioner.inference.formats import read_jsonl
from bioner.reporting import ReportError, archive_run, load_run
from bioner.reporting.runs import CHECKPOINT_CONFIG

QUIET = [
    "logger=none",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.mark.slow
def test_report_on_a_tiny_multirun(tmp_path: Path, tiny_model_dir: Path, shared_data: Path) -> None:
    sweep = tmp_path / "sweep"
    common = [*QUIET, "model=tiny", f"model.cache_dir={tiny_model_dir.parent.parent}"]
    command = [
        sys.executable,
        "-m",
        "bioner.train",
        "-m",
        *common,
        f"paths.data_dir={shared_data}",
        f"hydra.sweep.dir={sweep}",
        "data.limit_documents=12",
        "trainer.max_epochs=1",
        "bootstrap_samples=20",
        "robustness=default",
        "robustness.limit_documents=6",
        "robustness.text_kinds=[case]",
        "seed=1,2",
        "attack=none,fgm",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 4

    out = tmp_path / "report"
    report = [sys.executable, "-m", "bioner.report", str(sweep), "--baseline", "attack=none"]
    done = subprocess.run(
        [*report, "--out", str(out), "--bootstrap-samples", "100"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == (out / "results.md").read_text().strip()
    for name in ("results.csv", "per_type.csv", "results.tex", "per_type_f1.png", "wall_time.png"):
        assert (out / name).is_file(), name
    assert (out / "f1_vs_epsilon.png").is_file()

    rows = {row["attack"]: row for row in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == {"none", "fgm (epsilon=0.05)"}
    for attack, row in rows.items():
        members = [load_run(r) for r in runs if load_run(r).config["attack"]["name"] in attack]
        f1s = [m.metrics["test"]["metrics"]["f1"] for m in members]
        drops = [m.metrics["robustness"]["text"]["case"]["drop"] for m in members]
        assert row["runs"] == "2 seeds"
        assert float(row["f1_mean"]) == pytest.approx(np.mean(f1s))
        assert float(row["f1_std"]) == pytest.approx(np.std(f1s, ddof=1))
        assert float(row["robustness/text/case/drop_mean"]) == pytest.approx(np.mean(drops))
    assert rows["none"]["is_baseline"] == "True"

    # The delta is the pooled F1 difference of matched seeds, recomputed from the predictions.
    by_seed: dict[tuple[str, int], list] = {}
    for run in map(load_run, runs):
        records = read_jsonl(run.path / "predictions" / "test.jsonl")
        by_seed[run.config["attack"]["name"], run.seed] = records
    gold, pred_a, pred_b = [], [], []
    for seed in (1, 2):
        base = {r["id"]: r for r in by_seed["none", seed]}
        for record in by_seed["fgm", seed]:
            gold.append(Document(record["id"], record["text"], record["gold"]))
            pred_a.append(record["spans"])
            pred_b.append(base[record["id"]]["spans"])
    delta = evaluate(gold, pred_a).metrics()["f1"] - evaluate(gold, pred_b).metrics()["f1"]
    fgm = rows["fgm (epsilon=0.05)"]
    assert float(fgm["delta_f1"]) == pytest.approx(delta)
    assert 0.0 <= float(fgm["p_value"]) <= 1.0 and fgm["paired_runs"] == "2"

    # Errors reach the user as one line and exit status 2.
    done = subprocess.run(
        [*report, "--out", str(out), "--baseline", "attack=pgd"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "matches no run" in done.stderr


@pytest.mark.slow
def test_an_eval_run_reports_the_trained_setting(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """A bioner-eval folder holds the eval config; model, attack and seed come from the
    checkpoint."""
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    data = [f"paths.data_dir={shared_data}", "data.limit_documents=8", "bootstrap_samples=0"]
    train = [
        *QUIET,
        "model=tiny",
        f"model.cache_dir={tiny_model_dir.parent.parent}",
        "trainer.max_epochs=1",
        "seed=3",
        "attack=fgsm",
        f"hydra.run.dir={train_dir}",
    ]
    evaluate_ = [
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"ckpt_path={train_dir}/checkpoints/best.ckpt",
        f"hydra.run.dir={eval_dir}",
    ]
    for module, overrides in (("bioner.train", train), ("bioner.eval", evaluate_)):
        command = [sys.executable, "-m", module, *data, *overrides]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    run = load_run(eval_dir)
    assert (run.seed, run.config["attack"]["name"], run.config["model"]["name"]) == (
        3,
        "fgsm",
        "tiny",
    )
    trained = json.loads((train_dir / "metrics.json").read_text())["test"]["metrics"]["f1"]
    assert run.metrics["test"]["metrics"]["f1"] == pytest.approx(trained)
    assert run.config["alignment"]["decode_rule"] == "mass"
    # Scored again under another decode rule: a setting of its own.
    rule_dir = tmp_path / "eval_viterbi"
    again = [*evaluate_[:-1], f"hydra.run.dir={rule_dir}", "decode_rule=viterbi"]
    command = [sys.executable, "-m", "bioner.eval", *data, *again]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_run(rule_dir).config["alignment"]["decode_rule"] == "viterbi"
    # With a threshold and the corpus's types renamed: the report sees both (not training's).
    post_dir = tmp_path / "eval_threshold"
    again = [
        *evaluate_[:-1],
        f"hydra.run.dir={post_dir}",
        "postprocess=threshold",
        "dataset.relabel.map={Chemical: Drug}",
    ]
    command = [sys.executable, "-m", "bioner.eval", *data, *again]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    post = load_run(post_dir)
    assert (post.flat["postprocess"], run.flat["postprocess"]) == ("threshold", "none")
    assert post.flat["postprocess.threshold.min_score"] == "devel"
    assert post.config["dataset"]["relabel"]["map"] == {"Chemical": "Drug"}
    assert run.config["dataset"]["relabel"]["map"] is None
    # An ensemble (here of one run twice) is a setting of its own, of its first member's seed.
    ensemble_dir = tmp_path / "eval_ensemble"
    members = f"ckpt_path=[{train_dir}/checkpoints/best.ckpt,{train_dir}/checkpoints/best.ckpt]"
    again = [*evaluate_[:-2], members, f"hydra.run.dir={ensemble_dir}"]
    command = [sys.executable, "-m", "bioner.eval", *data, *again]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    voted = load_run(ensemble_dir)
    assert voted.seed == 3 and voted.config["ensemble"] == {"members": 2, "min_votes": "majority"}
    assert voted.metrics["test"]["metrics"]["f1"] == pytest.approx(trained)
    assert voted.flat["ensemble"] == "majority of 2" and run.flat["ensemble"] == "none"
    assert voted.models == [(3, None), (3, None)]  # it pairs with the run of seed 3

    # The run folder keeps what the report reads of the checkpoint: archived, the eval runs
    # read the same without it. An older eval run (without the file) reads the checkpoint.
    for folder in (eval_dir, ensemble_dir):
        assert (folder / CHECKPOINT_CONFIG).is_file()
        older = tmp_path / f"older_{folder.name}"
        shutil.copytree(folder, older)
        (older / CHECKPOINT_CONFIG).unlink()
    older_vote = json.loads((tmp_path / "older_eval_ensemble" / "metrics.json").read_text())
    del older_vote["ensemble"]["member_seeds"], older_vote["ensemble"]["member_folds"]
    (tmp_path / "older_eval_ensemble" / "metrics.json").write_text(json.dumps(older_vote))
    assert load_run(tmp_path / "older_eval_ensemble").models == voted.models
    assert load_run(tmp_path / "older_eval").config == run.config
    archived = [archive_run(f, tmp_path / "kept" / f.name) for f in (eval_dir, ensemble_dir)]
    shutil.rmtree(train_dir / "checkpoints")
    assert load_run(archived[0]).config == run.config
    assert load_run(archived[1]).config == voted.config
    with pytest.raises(ReportError, match="without checkpoint_config.yaml.*Score the checkpoint"):
        load_run(tmp_path / "older_eval")
