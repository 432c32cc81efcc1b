"""bench/parity.py end to end on the tiny BERT: both sides train, the Trainer's tags are scored by
bioner's evaluation on bioner's documents, a second call reuses every run, and a run killed after
an epoch continues from that epoch's checkpoint."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bioner.data.document import Document
from bioner.evaluation import evaluate
from bioner.inference.formats import read_jsonl

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))  # parity.py imports its neighbours as a script does


def test_folder_names_keep_ablations_apart_and_share_the_trainer_runs() -> None:
    from parity import side_names

    assert side_names([], "hf_trainer") == ("bioner", "hf_trainer")
    ablation = ["alignment.decode_rule=argmax", "module.fast_dropout=false"]
    assert side_names(ablation, "hf_trainer") == (
        "bioner+alignment.decode_rule-argmax+module.fast_dropout-false",
        "hf_trainer",  # the Trainer trains the same thing: its runs are reused
    )
    assert side_names(["model=tiny", "data.max_tokens=null"], "hf_trainer_bf16") == (
        "bioner+model-tiny+data.max_tokens-null",
        "hf_trainer_bf16+model-tiny",  # another encoder: other Trainer runs
    )


def test_the_step_window_times_from_the_first_step_without_warm_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import measure

    clock = iter(range(100, 200, 10))  # each call to now() is 10 s later
    monkeypatch.setattr(measure, "now", lambda: float(next(clock)))
    window = measure.StepWindow(warmup=0)  # every step timed (parity's epochs runs)
    for _ in range(3):
        window.step_start()
        window.step_end()
    # Opened at the first step's start (100); each step's end moves the close: 110, 120, 130.
    assert window.seconds == 30 and window.steps == 3


@pytest.mark.slow
def test_parity_scores_both_sides_with_bioner_evaluation_and_resumes(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    out = tmp_path / "parity"
    command = [
        sys.executable,
        str(REPO / "bench" / "parity.py"),
        "--datasets",
        "ncbi_disease",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--limit-documents",
        "12",
        "--samples",
        "50",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--bioner-overrides",
        "model=tiny",
        f"model.cache_dir={tiny_model_dir.parent.parent}",
        f"paths.data_dir={shared_data}",
    ]
    env = {**os.environ, "BIONER_DATA_DIR": str(shared_data)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    ours, theirs = (out / "ncbi_disease" / name / "s1" for name in figures["sides"])
    assert theirs.name == "s1" and theirs.parent.name.startswith("hf_trainer")
    (row,) = figures["results"]
    assert "| ncbi_disease | test |" in done.stdout
    for split in ("devel", "test"):
        bioner_records = read_jsonl(ours / "predictions" / f"{split}.jsonl")
        trainer_records = read_jsonl(theirs / "predictions" / f"{split}.jsonl")
        # The same documents and gold on both sides, every tagged sentence scored.
        assert {r["id"]: r["gold"] for r in trainer_records} == {
            r["id"]: r["gold"] for r in bioner_records
        }
        assert len(trainer_records) == 12
        (seed,) = row[split]["per_seed"]
        metrics = json.loads((ours / "metrics.json").read_text())
        assert seed["f1_a"] == pytest.approx(metrics[split]["metrics"]["f1"])
        gold = [Document(r["id"], r["text"], r["gold"]) for r in trainer_records]
        f1 = evaluate(gold, [r["spans"] for r in trainer_records]).metrics()["f1"]
        assert seed["f1_b"] == pytest.approx(f1)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and "\n+ " not in "\n" + again.stdout  # every run reused
    assert json.loads(again.stdout.strip().splitlines()[-1]) == figures

    # Killed after epoch 1 of 2: a folder with its epoch-1 checkpoint but no result.json.
    first = {run: json.loads((run / "result.json").read_text()) for run in (ours, theirs)}
    for run in (ours, theirs):
        (run / "result.json").unlink()
    command[command.index("--epochs") + 1] = "2"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert resumed.stdout.count(": resuming from ") == 2
    for run in (ours, theirs):
        result = json.loads((run / "result.json").read_text())
        (kept,) = json.loads((run / "attempts.json").read_text())["attempts_s"]
        assert result["resumed"] == 1 and 0 < kept <= first[run]["wall_s"]
        assert result["wall_s"] > kept
    # Each side trained epoch 2 only: 12 sentences are one batch, one step an epoch.
    assert json.loads((theirs / "result.json").read_text())["steps"] == 1
    assert json.loads((theirs / "result.json").read_text())["resumed_from"].endswith("checkpoint-1")
    # bioner still reports both epochs' speeds: the first came back in the checkpoint.
    assert len(json.loads((ours / "result.json").read_text())["epoch_sentences_per_s"]) == 2

    # --archive: every finished run kept without checkpoint or corpus text, and taken back by a
    # machine whose --out is empty, for the same table.
    figures = json.loads(resumed.stdout.strip().splitlines()[-1])
    kept = tmp_path / "kept"
    archived = subprocess.run(
        [*command, "--archive", str(kept)], capture_output=True, text=True, timeout=600, env=env
    )
    assert archived.returncode == 0, archived.stdout[-3000:] + archived.stderr[-3000:]
    assert not [p for p in kept.rglob("*") if p.is_file() and p.suffix not in (".json", ".gz")]
    records = (kept / ours.relative_to(out) / "predictions" / "test.jsonl.gz").read_bytes()
    records = gzip.decompress(records).decode()
    assert {tuple(json.loads(r)) for r in records.splitlines()} == {("id", "text_sha256", "spans")}
    shutil.rmtree(out)
    again = subprocess.run(
        [*command, "--archive", str(kept)], capture_output=True, text=True, timeout=600, env=env
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count(": taken from ") == 2 and "\n+ " not in "\n" + again.stdout
    assert json.loads(again.stdout.strip().splitlines()[-1]) == figures

    # --bioner-only trains one side and stops before the table.
    half = [*command, "--bioner-only"]
    half[half.index("--out") + 1] = str(tmp_path / "half")
    only = subprocess.run(half, capture_output=True, text=True, timeout=600, env=env)
    assert only.returncode == 0, only.stdout[-3000:] + only.stderr[-3000:]
    assert "--bioner-only" in only.stdout and "| ncbi_disease |" not in only.stdout
    assert [p.name for p in (tmp_path / "half" / "ncbi_disease").iterdir()] == [ours.parent.name]
