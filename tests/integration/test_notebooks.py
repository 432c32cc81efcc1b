"""The notebooks under notebooks/ run headless on tiny runs, and are committed without outputs.

Each notebook runs in a fresh kernel of this interpreter (:func:`execute_notebook`) with small
settings injected into its ``parameters`` cell; the assertions read the executed cells' outputs
and compare them with the files the runs wrote.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from bioner.config import compose_config
from bioner.reporting import build_report, to_markdown
from bioner.train import train
from tools.notebooks import execute_notebook, inject_parameters, is_stripped, read_notebook
from tools.notebooks import main as notebook_tools

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
QUIET = [
    "logger=none",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
# A printed span: `  [start, end)  Type  score  text`.
SPAN_LINE = re.compile(r"^  \[\s*(\d+),\s*(\d+)\)  (\S+)\s+(\d\.\d{3})  (.*)$")


def outputs(nb: nbformat.NotebookNode, mime: str = "text") -> list[str]:
    """Every output of the code cells: printed text (``text``) or one display MIME type."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if mime == "text" and output.output_type == "stream" and output.name == "stdout":
                found.append(output.text)
            elif mime != "text" and mime in output.get("data", {}):
                found.append(output.data[mime])
    return found


def tiny(tiny_model_dir: Path, shared_data: Path) -> list[str]:
    # The session's tiny BERT lives in <cache>/encoders/<name>; model=tiny finds it there.
    cache = tiny_model_dir.parent.parent
    return [*QUIET, "model=tiny", f"model.cache_dir={cache}", f"paths.data_dir={shared_data}"]


def png(path: Path) -> str:
    """A PNG file as the notebook shows it (base64, as in ``image/png`` outputs)."""
    return base64.b64encode(path.read_bytes()).decode()


def test_committed_notebooks_are_stripped() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {"01_quickstart.ipynb", "02_ablation_report.ipynb"} <= {p.name for p in paths}
    for path in paths:
        nb = read_notebook(path)
        nbformat.validate(nb)
        assert is_stripped(nb), f"strip it: python -m tools.notebooks strip {path}"
        inject_parameters(nb, {}, name=str(path))  # exactly one parameters cell
        assert nb.metadata.kernelspec.name == "python3"


def test_the_kernel_is_this_interpreter_and_sees_the_injected_values(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("value = 1", metadata={"tags": ["parameters"]}),
            new_code_cell("import os, sys\nprint(sys.executable, value, os.getcwd())"),
        ]
    )
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, str(path))
    done = execute_notebook(path, {"value": [2, "x"]}, cwd=tmp_path, timeout=120)
    assert outputs(done) == [f"{sys.executable} [2, 'x'] {tmp_path}\n"]
    # The page for readers: outputs kept, timings and machine metadata dropped, the
    # notebook itself left stripped.
    assert (
        notebook_tools(["render", str(path), "--set", "value=3", "--out", str(tmp_path / "d")]) == 0
    )
    rendered = (tmp_path / "d" / "probe.md").read_text()
    assert f"```text\n{sys.executable} 3 {tmp_path}\n```" in rendered
    assert "```python\nvalue = 1" in rendered
    assert "iopub" not in rendered and "language_info" not in rendered
    assert not (tmp_path / "d" / "probe.ipynb").exists()
    assert is_stripped(read_notebook(path))


def train_sentences(data_dir: Path, n: int) -> list[str]:
    """The first ``n`` sentences of BC5CDR train, words joined by spaces."""
    sentences, words = [], []
    for line in (data_dir / "bc5cdr" / "train.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
            if len(sentences) == n:
                break
    return sentences


@pytest.mark.slow
def test_quickstart_notebook_trains_reports_and_tags(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    run_dir = tmp_path / "run"
    # The tiny BERT memorises 16 sentences in a few steps at a high learning rate, so tagging
    # those sentences finds entities to print.
    sentences = train_sentences(shared_data, 5)
    overrides = [
        *tiny(tiny_model_dir, shared_data),
        "data.limit_documents=16",
        "data.batch_size=8",
        "trainer.max_epochs=12",
        "module.lr=5e-3",
        "callbacks.early_stopping=null",
        "bootstrap_samples=50",
    ]
    parameters = {"overrides": overrides, "run_dir": str(run_dir), "sentences": sentences}
    nb = execute_notebook(
        NOTEBOOKS / "01_quickstart.ipynb",
        parameters,
        cwd=tmp_path,
        timeout=300,
        output=tmp_path / "executed.ipynb",
    )
    printed = "".join(outputs(nb))
    assert f"python: {sys.executable}\n" in printed
    assert f"folder: {run_dir}\n" in printed

    # The scores shown are those of metrics.json.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    tables = "\n".join(outputs(nb, "text/markdown"))
    for split in ("devel", "test"):
        m, (low, high) = metrics[split]["metrics"], metrics[split]["ci95"]["f1"]
        row = f"| {split} | 16 | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | "
        assert row + f"[{low:.4f}, {high:.4f}] |" in tables
    for row in metrics["test"]["per_type"]:
        assert f"| {row['type']} | {row['tp']} | {row['fp']} | {row['fn']} |" in tables

    # Spans with offsets into their sentence, under that sentence.
    lines = printed[printed.index(sentences[0] + "\n") :].splitlines()
    spans, sentence = [], None
    for line in lines:
        if line in sentences:
            sentence = line
        elif (match := SPAN_LINE.match(line)) is not None:
            start, end = int(match[1]), int(match[2])
            assert sentence[start:end] == match[5] and match[3] in ("Chemical", "Disease")
            spans.append(match[5])
    assert spans, printed[-2000:]

    assert outputs(nb, "image/png") == [
        png(run_dir / "confusion_test.png"),
        png(run_dir / "confidence_test.png"),
    ]
    confidence = metrics["test"]["confidence"]
    assert f"ECE {confidence['ece']:.4f}, average precision" in printed
    # The first errors of errors_test.tsv, and how many there are.
    header, *errors = (run_dir / "errors_test.tsv").read_text().splitlines()
    assert f"{len(errors)} errors" in tables
    first = dict(zip(header.split("\t"), errors[0].split("\t")))
    assert f"| {first['document']} | {first['outcome']} |" in tables
    assert "training stopped: max_epochs=12 reached" in printed

    # Given the finished run, the notebook shows it without training again.
    before = sorted(p.name for p in run_dir.iterdir())
    shown = execute_notebook(
        NOTEBOOKS / "01_quickstart.ipynb",
        {"run_folder": str(run_dir), "sentences": sentences},
        cwd=tmp_path,
        timeout=300,
    )
    assert f"finished run: {run_dir.name}\n" in "".join(outputs(shown))
    assert outputs(shown, "text/markdown") == outputs(nb, "text/markdown")
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.slow
def test_report_notebook_renders_a_tiny_multirun(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    sweep, out = tmp_path / "multirun", tmp_path / "report"
    for num, attack in enumerate(("none", "fgsm")):
        cfg = compose_config(
            "train",
            [
                f"run_dir={sweep / f'{num}_{attack}'}",
                *tiny(tiny_model_dir, shared_data),
                f"attack={attack}",
                "data.limit_documents=8",
                "trainer.max_epochs=1",
                "bootstrap_samples=20",
                "robustness=default",
                "robustness.limit_documents=4",
                "robustness.text_kinds=[case]",
            ],
        )
        train(cfg)

    parameters = {
        "paths": [str(sweep)],
        "out": str(out),
        "bootstrap_samples": 50,
        "baseline": "attack=none",
    }
    nb = execute_notebook(NOTEBOOKS / "02_ablation_report.ipynb", parameters, cwd=tmp_path)
    printed = "".join(outputs(nb))
    assert f"python: {sys.executable}\n" in printed
    assert "2 finished runs in 2 settings\n" in printed

    # The rendered tables are bioner-report's for the same runs, paired test included.
    expected = to_markdown(build_report([sweep], baseline="attack=none", bootstrap_samples=50))
    assert outputs(nb, "text/markdown") == [expected]
    assert "| none |" in expected and "baseline" in expected and "fgsm" in expected
    names = ("per_type_f1.png", "f1_vs_epsilon.png")
    assert outputs(nb, "image/png") == [png(out / name) for name in names]
    assert (out / "results.md").read_text() == expected
