"""``bioner-predict`` end to end through ``python -m bioner.predict``: stdin to stdout, files,
post-processing from the config group, several models, and a run folder made by training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from bioner.config import compose_config
from bioner.data.alignment import Alignment
from bioner.inference import Tagger
from bioner.inference.export import export_pretrained
from bioner.inference.formats import prediction_record
from bioner.models.encoders import HubEncoder
from bioner.predict import _model_shorthand, predict

REPO = Path(__file__).resolve().parents[2]
TYPES = ["Chemical", "Disease"]
TEXTS = [
    "Naloxone reverses the antihypertensive effect of clonidine.",
    "",
    "Acute renal failure (ARF) after cisplatin\t(CDDP);  ARF in α-rats\r😀.",
]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory) -> Path:
    """The tiny BERT with a wide random head (varied predictions), exported like a trained one."""
    alignment = Alignment()
    labels = alignment.labels(TYPES)
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    model = encoder.load_model(dict(enumerate(labels)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.nn.init.normal_(model.classifier.weight, std=2.0)
    metadata = {
        "alignment": {"_target_": "bioner.data.alignment.Alignment", "label_strategy": "first"},
        "entity_types": TYPES,
    }
    folder = tmp_path_factory.mktemp("predict") / "model"
    return export_pretrained(model, encoder.load_tokenizer(), folder, metadata)


def run_cli(*overrides: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bioner.predict", *overrides],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def test_stdin_to_stdout_with_the_model_shorthand(exported: Path, tmp_path: Path) -> None:
    data = "\n".join(TEXTS).encode() + b"\n"
    done = run_cli(f"model={exported}", "input=-", "output=-", stdin=data)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    # Only JSON on stdout (logs go to stderr); one record per input line, text exact.
    assert [r["text"] for r in records] == TEXTS
    assert [r["id"] for r in records] == ["1", "2", "3"]
    expected = Tagger.load(exported, device="cpu").predict(TEXTS)
    assert [r["spans"] for r in records] == [
        [prediction_record(s, text) for s in d] for d, text in zip(expected, TEXTS)
    ]
    assert any(records[0]["spans"]) and b"tagged 3 documents" in done.stderr
    assert not list(REPO.glob("predict.log")) and not (REPO / ".hydra").exists()


def test_files_formats_and_postprocessing(exported: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"doc{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)),
        encoding="utf-8",
    )
    dictionary = tmp_path / "dict.tsv"
    dictionary.write_text("arf\tD058186\nnaloxone\tD009270\n", encoding="utf-8")
    out = tmp_path / "out" / "spans.xml"
    done = run_cli(
        f"model=[{exported},{exported}]",
        f"input={source}",
        f"output={out}",
        "format=bioc",
        "postprocess=[abbreviations,overlaps,dictionary]",
        f"postprocess.dictionary.path={dictionary}",
        "tagger.batch_size=2",
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    root = ET.parse(out).getroot()
    docs = root.findall("document")
    assert [d.findtext("id") for d in docs] == ["doc0", "doc1", "doc2"]
    for doc, text in zip(docs, TEXTS):
        assert doc.find("passage").findtext("text") == text
        locations = []
        for a in doc.iter("annotation"):
            loc = a.find("location")
            start, end = int(loc.get("offset")), int(loc.get("offset")) + int(loc.get("length"))
            assert text[start:end] == a.findtext("text")
            infons = {i.get("key"): i.text for i in a.findall("infon")}
            if a.findtext("text").lower() in ("arf", "naloxone"):
                assert infons["identifier"] in ("D058186", "D009270")
            locations.append((start, end))
        # Two copies of one model claim the same words: the overlap step kept one of each.
        assert locations == sorted(set(locations))
        assert all(a[1] <= b[0] for a, b in zip(locations, locations[1:]))
    assert not list(out.parent.glob(".*partial"))


def test_errors_are_clear_and_leave_no_output(exported: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "fine"}\nnot json\n', encoding="utf-8")
    out = tmp_path / "never.jsonl"
    done = run_cli(f"model={exported}", f"input={bad}", f"output={out}")
    assert done.returncode != 0
    assert b"bad.jsonl:2: not JSON" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_model_shorthand_and_composed_config(exported: Path, tmp_path: Path) -> None:
    assert _model_shorthand(["model=a", "input=-", "model_x=1"]) == [
        "tagger.folder=a",
        "input=-",
        "model_x=1",
    ]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS), encoding="utf-8")
    out = tmp_path / "out.conll"
    cfg = compose_config(
        "predict",
        [f"tagger.folder={exported}", f"input={source}", f"output={out}", "format=conll"],
    )
    summary = predict(cfg)
    assert summary["documents"] == 3
    assert out.read_text(encoding="utf-8").count("-DOCSTART-") == 3


@pytest.mark.slow
def test_a_trained_run_folder_predicts(tiny_model_dir: Path, tmp_path: Path, shared_data) -> None:
    """Train the tiny BERT briefly through bioner-train and tag with its run folder."""
    from bioner.train import train

    cfg = compose_config(
        "train",
        [
            f"run_dir={tmp_path / 'run'}",
            "logger=none",
            "callbacks.rich_progress_bar=null",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "model=tiny",
            f"model.cache_dir={tiny_model_dir.parent.parent}",
            f"paths.data_dir={shared_data}",
            "data.limit_documents=40",
            "trainer.max_epochs=1",
            "bootstrap_samples=0",
        ],
    )
    train(cfg)
    source = tmp_path / "abstracts.pubtator"
    source.write_text("7|t|Clonidine and naloxone.\n7|a|Renal failure.\n\n", encoding="utf-8")
    out = tmp_path / "out.pubtator"
    done = run_cli(
        f"model={tmp_path / 'run'}", f"input={source}", f"output={out}", "format=pubtator"
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert out.read_text(encoding="utf-8").startswith(
        "7|t|Clonidine and naloxone.\n7|a|Renal failure.\n"
    )
