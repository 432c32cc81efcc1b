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

from bioner.config import compose_config, instantiate_node
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


def run_cli(
    *overrides: str, stdin: bytes | None = None, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, *flags, "-m", "bioner.predict", *overrides],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def test_stdin_to_stdout_with_the_model_shorthand(exported: Path, tmp_path: Path) -> None:
    data = "\n".join(TEXTS).encode() + b"\n"
    # -X importtime lists every module imported on stderr.
    done = run_cli(
        f"model={exported}", "input=-", "output=-", stdin=data, flags=("-X", "importtime")
    )
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
    # runner=local (the default) never imports Ray, installed or not.
    imported = [line.rsplit(b"|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert b"json" in imported and not [m for m in imported if m.split(b".")[0] == b"ray"]
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
        # Two copies of one model vote (tagger.min_votes=auto): each span once, none overlapping.
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


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        # Found while writing: the format cannot hold the document.
        ("format=pubtator", b"document id 'a|b' cannot be a PubTator id"),
        # Found before the model loads: settings out of range, unknown formats, no CUDA.
        ("tagger.batch_size=0", b"tagger.batch_size=0: must be a positive integer"),
        ("tagger.max_tokens=0", b"tagger.max_tokens=0: must be a positive integer or null"),
        ("format=xml", b"format='xml': choose one of jsonl, pubtator, bioc, conll"),
        ("tagger.device=gpu", b"tagger.device='gpu': choose auto, cpu, cuda or cuda:<index>"),
    ],
)
def test_user_errors_are_one_message_and_exit_2(
    exported: Path, tmp_path: Path, setting: str, message: bytes
) -> None:
    source = tmp_path / "ids.jsonl"
    source.write_text('{"id": "a|b", "text": "Aspirin causes ulcers."}\n', encoding="utf-8")
    out = tmp_path / "never.txt"
    done = run_cli(f"model={exported}", f"input={source}", f"output={out}", setting)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and b"Traceback" not in done.stderr
    assert not out.exists()


def test_brat_output_is_a_folder_to_correct_and_train_on(exported: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "ward").mkdir(parents=True)
    for i, text in enumerate(TEXTS):
        (notes / ("ward" if i else "") / f"n{i}.txt").write_bytes(text.encode("utf-8"))
    out = tmp_path / "preannotated"
    done = run_cli(f"model={exported}", f"input={notes}", f"output={out}", "format=brat")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "annotation.conf", "n0.ann", "n0.txt", "ward", "ward/n1.ann", "ward/n1.txt",
        "ward/n2.ann", "ward/n2.txt",
    ]  # fmt: skip
    assert not list(tmp_path.glob(".*partial"))
    # The folder is a brat corpus: dataset=brat reads the model's spans back, offsets and all.
    folders = [f"dataset.folders.{split}=." for split in ("train", "devel", "test")]
    cfg = compose_config("data", ["dataset=brat", f"dataset.data_dir={out}", *folders])
    docs = {d.id: d for d in instantiate_node(cfg.dataset, "dataset").load("test")}
    expected = Tagger.load(exported, device="cpu").predict(TEXTS)
    for i, spans in enumerate(expected):
        doc = docs["ward/" * bool(i) + f"n{i}"]
        assert doc.text == TEXTS[i]
        assert [(s.start, s.end, s.label) for s in doc.spans] == [
            (s.start, s.end, s.label) for s in spans
        ]
    assert any(expected)
    # Never into a folder that holds something (corrected annotations, say), nor to stdout.
    for output in (out, "-"):
        done = run_cli(f"model={exported}", f"input={notes}", f"output={output}", "format=brat")
        assert done.returncode == 2 and b"Traceback" not in done.stderr
        assert b"this format writes a folder of files: give a new or empty folder" in done.stderr
    assert (out / "n0.ann").is_file()


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


# ---------------------------------------------------------------------- runner=ray


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance on 2 CPUs for the module's Ray tests (start-up takes 10-20 s)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _pubmed_corpus(folder: Path) -> None:
    """Three PubMed files of tricky and plain abstracts (tests/fixtures/pubmed_xml.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "pubmed_xml", REPO / "tests" / "fixtures" / "pubmed_xml.py"
    )
    pubmed_xml = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pubmed_xml)
    folder.mkdir()
    for f in range(3):
        articles = [
            pubmed_xml.plain_article(f"{f}{i}", f"Title {f}.{i}: {TEXTS[i % 3][:40]}", text)
            for i, text in enumerate([*TEXTS, *(t[::-1] for t in TEXTS)])
        ]
        articles.append(
            (f"{f}9", "Na<sup>+</sup> and <i>cisplatin</i>", [("METHODS", "Cisplatin &amp; ARF.")])
        )
        pubmed_xml.write_pubmed(folder / f"pubmed26n000{f}.xml.gz", articles)


@pytest.mark.slow
def test_runner_ray_tags_like_local_and_skips_files_done(
    exported: Path, tmp_path: Path, ray_session
) -> None:
    """Two CPU actors over three PubMed files: every document's spans equal runner=local's; an
    output that exists (a finished file of a killed run) is skipped, a half-written one redone."""
    source, out = tmp_path / "baseline", tmp_path / "tagged"
    _pubmed_corpus(source)
    out.mkdir()
    (out / "pubmed26n0001.jsonl").write_text("done before\n", encoding="utf-8")
    (out / ".pubmed26n0002.jsonl.partial").write_text('{"id": "half', encoding="utf-8")
    cfg = compose_config(
        "predict",
        [
            f"tagger.folder={exported}",
            f"input={source}",
            f"output={out}",
            "runner=ray",
            "runner.num_actors=2",
            "runner.batch_size=3",  # several batches per file
            "runner.progress=false",
        ],
    )
    summary = predict(cfg)
    assert summary["files_written"] == 2 and summary["files_skipped"] == 1
    assert summary["documents"] == 14 and summary["failed_files"] == 0
    assert (out / "pubmed26n0001.jsonl").read_text(encoding="utf-8") == "done before\n"
    assert sorted(p.name for p in out.iterdir()) == [f"pubmed26n000{f}.jsonl" for f in range(3)]

    local = predict(
        compose_config(
            "predict",
            [f"tagger.folder={exported}", f"input={source}", f"output={tmp_path / 'local.jsonl'}"],
        )
    )
    expected = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]
    got = [
        json.loads(line)
        for f in (0, 2)
        for line in (out / f"pubmed26n000{f}.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    expected = [r for r in expected if r["id"][0] in "02"]
    assert local["documents"] == 21 and len(got) == len(expected) == 14

    def spans(record: dict) -> list:
        return [(s["start"], s["end"], s["type"], s["text"]) for s in record["spans"]]

    assert [(r["id"], r["text"], spans(r)) for r in got] == [
        (r["id"], r["text"], spans(r)) for r in expected
    ]
    assert sum(len(spans(r)) for r in got) > 0
    # Scores agree up to float rounding: batches differ in padding and thread count.
    for r, e in zip(got, expected):
        for a, b in zip(r["spans"], e["spans"]):
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_min_score_devel_takes_the_value_the_model_s_run_chose(
    exported: Path, tmp_path: Path
) -> None:
    import shutil

    from bioner.errors import ConfigError
    from bioner.inference.run import build_tagger

    run = tmp_path / "run"
    shutil.copytree(exported, run / "model")

    def tagger(folder: object) -> Tagger:
        return build_tagger(
            compose_config("predict", [f"tagger.folder={folder}", "postprocess=threshold"])
        )

    # An exported folder on its own holds no devel choice.
    with pytest.raises(ConfigError, match=r"has no metrics.json with devel.confidence.best"):
        tagger(run / "model")
    best = {"min_score": 0.9, "f1": 0.76}
    (run / "metrics.json").write_text(json.dumps({"devel": {"confidence": {"best": best}}}))
    given = build_tagger(
        compose_config(
            "predict",
            [
                f"tagger.folder={run}",
                "postprocess=threshold",
                "postprocess.threshold.min_score=0.9",
            ],
        )
    )
    for folder in (run, run / "model"):  # the run folder, or the model/ folder inside it
        chosen = tagger(folder)
        (step,) = chosen.postprocess
        assert step.min_score == 0.9
        spans = chosen.predict(TEXTS)
        assert spans == given.predict(TEXTS)
        assert all(s.score >= 0.9 for doc in spans for s in doc)
    assert sum(map(len, spans)) < sum(map(len, Tagger.load(run).predict(TEXTS)))
    # The vote of several models scores spans as no single run did.
    with pytest.raises(ConfigError, match="several models: the vote's scores"):
        tagger(f"[{run},{run}]")
