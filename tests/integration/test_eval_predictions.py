"""``bioner-eval predictions=<file>``: another tool's (or bioner-predict's) spans scored against a
corpus's gold, with the report of a checkpoint's, and every mismatch an error, never a silent 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioner.config import compose_config
from bioner.data.document import Span
from bioner.data.errors import CorpusFormatError
from bioner.errors import ConfigError
from bioner.eval import evaluate_checkpoint
from bioner.inference.formats import BratWriter, open_writer, read_jsonl
from bioner.inference.scored_files import PredictionsError, detect_predictions_format
from bioner.inference.tagger import make_document
from bioner.reporting import build_report

# A PubTator corpus of three documents per split; the offsets index title + " " + abstract.
DOCS = {
    "test": [
        (
            "101",
            "Aspirin and fever.",
            "Aspirin reduced fever in rats.",
            [
                (0, 7, "Aspirin", "Chemical"),
                (12, 17, "fever", "Disease"),
                (19, 26, "Aspirin", "Chemical"),
                (35, 40, "fever", "Disease"),
            ],
        ),
        (
            "102",
            "Cocaine seizures.",
            "No seizures after lithium.",
            [
                (0, 7, "Cocaine", "Chemical"),
                (8, 16, "seizures", "Disease"),
                (21, 29, "seizures", "Disease"),
                (36, 43, "lithium", "Chemical"),
            ],
        ),
        ("103", "Nothing here.", "A plain sentence.", []),
    ],
    "devel": [
        (
            "201",
            "Heparin and bleeding.",
            "Bleeding stopped.",
            [
                (0, 7, "Heparin", "Chemical"),
                (12, 20, "bleeding", "Disease"),
            ],
        ),
    ],
    "train": [
        (
            "301",
            "Morphine and pain.",
            "Pain went away.",
            [
                (0, 8, "Morphine", "Chemical"),
                (13, 17, "pain", "Disease"),
            ],
        ),
    ],
}
# The file names of dataset=bc5cdr_pubtator.
FILES = {
    "train": "CDR_TrainingSet.PubTator.txt",
    "devel": "CDR_DevelopmentSet.PubTator.txt",
    "test": "CDR_TestSet.PubTator.txt",
}


def pubtator(docs, drop=(), add=()) -> str:
    """The PubTator text of ``docs`` with the mentions ``drop`` (pmid, start) left out and
    ``add`` (pmid, start, end, text, type) added."""
    lines = []
    for pmid, title, abstract, mentions in docs:
        lines += [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"]
        for start, end, text, kind in mentions:
            if (pmid, start) not in drop:
                lines.append(f"{pmid}\t{start}\t{end}\t{text}\t{kind}")
        lines += [f"{p}\t{s}\t{e}\t{t}\t{k}" for p, s, e, t, k in add if p == pmid]
        lines.append("")
    return "\n".join(lines) + "\n"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for split, name in FILES.items():
        (folder / name).write_text(pubtator(DOCS[split]))
    return folder


def score(
    tmp_path: Path, corpus: Path, predictions: Path | str, *overrides: str, run: str = "scored"
) -> dict:
    return evaluate_checkpoint(
        compose_config(
            "eval",
            [
                f"predictions={predictions}",
                "dataset=bc5cdr_pubtator",
                f"dataset.data_dir={corpus}",
                f"run_dir={tmp_path / run}",
                "bootstrap_samples=0",
                *overrides,
            ],
        )
    )


def test_pubtator_predictions_are_scored_as_counted(tmp_path: Path, corpus: Path) -> None:
    """One gold mention missed and one spurious: P = R = 7/8, written as a checkpoint's run."""
    path = tmp_path / "out.pubtator"
    path.write_text(
        pubtator(DOCS["test"], drop={("102", 36)}, add=[("103", 0, 7, "Nothing", "Chemical")])
    )
    summary = score(tmp_path, corpus, path, "splits=[test]")
    metrics = summary["test"]["metrics"]
    assert metrics["precision"] == pytest.approx(7 / 8)
    assert metrics["recall"] == pytest.approx(7 / 8)
    assert summary["predictions_format"] == "pubtator"
    assert summary["test"]["documents"] == 3
    run = tmp_path / "scored"
    assert json.loads((run / "metrics.json").read_text())["test"]["metrics"] == metrics
    errors = (run / "errors_test.tsv").read_text()
    assert "lithium" in errors and "Nothing" in errors
    assert "Scored the spans of" in (run / "README.md").read_text()
    # No scores in PubTator: no confidence section, and no post-processing that needs them.
    assert "confidence" not in summary["test"]
    with pytest.raises(ConfigError, match="score"):
        score(tmp_path, corpus, path, "splits=[test]", "postprocess=threshold", "overwrite=true")


def test_every_format_gives_the_same_scores(tmp_path: Path, corpus: Path) -> None:
    """The tagger's JSONL (with scores), a run's JSONL, BioC and brat of the same spans."""
    spans = {
        pmid: [(s, e, k) for s, e, _, k in mentions if (pmid, s) != ("101", 35)]
        for pmid, _, _, mentions in DOCS["test"]
    }
    texts = {pmid: f"{title} {abstract}" for pmid, title, abstract, _ in DOCS["test"]}
    tagger = tmp_path / "tagger.jsonl"
    tagger.write_text(
        "".join(
            json.dumps(
                {
                    "id": pmid,
                    "text": texts[pmid],
                    "spans": [
                        {"start": s, "end": e, "text": texts[pmid][s:e], "type": k, "score": 0.9}
                        for s, e, k in spans[pmid]
                    ],
                }
            )
            + "\n"
            for pmid in texts
        )
    )
    expected = score(tmp_path, corpus, tagger, "splits=[test]")["test"]["metrics"]
    assert expected["recall"] == pytest.approx(7 / 8) and expected["precision"] == 1.0
    # Its spans have scores: post-processing applies, and the raw scores are kept beside.
    summary = score(
        tmp_path, corpus, tagger, "splits=[test]", "postprocess=threshold",
        "postprocess.threshold.min_score=0.95", run="thresholded",
    )  # fmt: skip
    assert summary["test"]["metrics"]["recall"] == 0.0
    assert summary["postprocess"]["test"]["f1_raw"] == pytest.approx(expected["f1"])
    # The run's own predictions file (spans with `label`) scores the same.
    run_file = tmp_path / "scored" / "predictions" / "test.jsonl"
    assert [len(r["spans"]) for r in read_jsonl(run_file)] == [3, 4, 0]
    shutil.copy(run_file, tmp_path / "run.jsonl")
    # BioC and brat, as bioner-predict writes them.
    docs = [make_document(text, pmid) for pmid, text in texts.items()]
    with open(tmp_path / "out.xml", "w") as stream, open_writer("bioc", stream) as writer:
        for doc in docs:
            writer.write(doc, [Span(*s) for s in spans[doc.id]])
    (tmp_path / "brat").mkdir()
    with BratWriter(tmp_path / "brat") as writer:
        for doc in docs:
            writer.write(doc, [Span(*s) for s in spans[doc.id]])
    for path in (tmp_path / "run.jsonl", tmp_path / "out.xml", tmp_path / "brat"):
        got = score(tmp_path, corpus, path, "splits=[test]", "overwrite=true")["test"]["metrics"]
        assert got["f1"] == pytest.approx(expected["f1"]), path


def test_scores_a_teachers_silver_on_train(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "silver.pubtator"
    path.write_text(pubtator(DOCS["train"], drop={("301", 13)}))
    summary = score(tmp_path, corpus, path, "splits=[train]")
    assert summary["train"]["metrics"]["recall"] == 0.5
    assert summary["train"]["metrics"]["precision"] == 1.0
    # A report of such runs on train, paired with each other.
    other = tmp_path / "all.pubtator"
    other.write_text(pubtator(DOCS["train"]))
    score(tmp_path, corpus, other, "splits=[train]", run="scored_all")
    report = build_report(
        [tmp_path / "scored", tmp_path / "scored_all"],
        split="train",
        group_by=["predictions"],
        baseline=f"predictions={other}",
        bootstrap_samples=50,
    )
    assert report.split == "train"
    tested = [s for s in report.settings if not s.is_baseline]
    assert len(report.settings) == 2 and len(tested) == 1
    # F1 of R 0.5 and P 1 against F1 1, on the one training document
    assert tested[0].test.result["delta"] == pytest.approx(2 / 3 - 1)


def test_conll_is_matched_to_an_iob_corpus_sentence_for_sentence(
    tmp_path: Path, fixtures_dir: Path
) -> None:
    gold = (fixtures_dir / "iob" / "test.tsv").read_text()
    # word<TAB>gold<TAB>predicted, as a run's predictions/test.conll: the last column is read.
    lines = [line + "\t" + line.split("\t")[1] if line else "" for line in gold.splitlines()]
    path = tmp_path / "test.conll"
    path.write_text("\n".join(lines) + "\n")

    def run(*overrides: str) -> dict:
        return evaluate_checkpoint(
            compose_config(
                "eval",
                [
                    f"predictions={path}",
                    "dataset=iob",
                    f"dataset.data_dir={fixtures_dir / 'iob'}",
                    f"run_dir={tmp_path / 'scored'}",
                    "bootstrap_samples=0",
                    "overwrite=true",
                    *overrides,
                ],
            )
        )

    assert run("splits=[test]")["test"]["metrics"]["f1"] == 1.0
    with pytest.raises(ConfigError, match=r"one split's sentences"):
        run()
    # IOBES tags: refused as IOB2 with the key that reads them, then read with it.
    iobes = list(lines)
    for i, line in enumerate(lines):
        if not line:
            continue
        tag = line.rsplit("\t", 1)[1]
        after = lines[i + 1].rsplit("\t", 1)[1] if i + 1 < len(lines) and lines[i + 1] else "O"
        if tag != "O" and not after.startswith("I-"):
            iobes[i] = line[: -len(tag)] + ("S-" if tag.startswith("B-") else "E-") + tag[2:]
    assert iobes != lines
    path.write_text("\n".join(iobes) + "\n")
    with pytest.raises(
        CorpusFormatError, match=r"test.conll:\d+: .* predictions_scheme=IOB1 or IOBES"
    ):
        run("splits=[test]")
    assert run("splits=[test]", "predictions_scheme=IOBES")["test"]["metrics"]["f1"] == 1.0
    with pytest.raises(ConfigError, match="predictions_scheme=BIO: choose one of"):
        run("splits=[test]", "predictions_scheme=BIO")
    path.write_text("\n".join(lines) + "\n")
    # A word changed: the text is not the corpus's, named with the document.
    path.write_text(path.read_text().replace("haloperidol", "haloperidoI", 1))
    with pytest.raises(PredictionsError, match=r"test-0's text differs .* at character"):
        run("splits=[test]")


def test_conll_against_a_corpus_with_document_ids_is_refused(
    tmp_path: Path, corpus: Path, fixtures_dir: Path
) -> None:
    path = tmp_path / "test.conll"
    shutil.copy(fixtures_dir / "iob" / "test.tsv", path)
    with pytest.raises(ConfigError, match=r"no document ids .* names its documents \(101\)"):
        score(tmp_path, corpus, path, "splits=[test]")


def test_a_file_that_does_not_cover_the_splits_is_refused(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "test.pubtator"
    path.write_text(pubtator(DOCS["test"][:2]))  # the third document left out
    with pytest.raises(PredictionsError, match=r"no document for 1 of the 3 test .* 103"):
        score(tmp_path, corpus, path, "splits=[test]")
    path.write_text(pubtator(DOCS["test"]))
    with pytest.raises(ConfigError, match=r"every test document .* splits=\[test\]"):
        score(tmp_path, corpus, path, "overwrite=true")  # splits=[devel,test] by default
    path.write_text(pubtator(DOCS["devel"]))
    with pytest.raises(PredictionsError, match=r"holds none of the 3 test documents"):
        score(tmp_path, corpus, path, "splits=[test]", "overwrite=true")
    twice = tmp_path / "twice.jsonl"
    record = {"id": "101", "text": "Aspirin and fever. Aspirin reduced fever in rats.", "spans": []}
    twice.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(PredictionsError, match="document 101 appears twice"):
        score(tmp_path, corpus, twice, "splits=[test]", "overwrite=true")


def test_types_the_corpus_lacks_are_counted_apart(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "test.pubtator"
    path.write_text(pubtator(DOCS["test"], add=[("103", 0, 7, "Nothing", "Gene")]))
    summary = score(tmp_path, corpus, path, "splits=[test]")
    assert summary["test"]["metrics"]["f1"] == 1.0
    assert summary["label_sets"]["model_only"] == ["Gene"]
    assert summary["label_sets"]["test"]["dropped_predictions"] == {"Gene": 1}
    # Types that are all the corpus's but one never predicted: every gold type is still scored.
    path.write_text(pubtator([(p, t, a, [m for m in ms if m[3] == "Chemical"])
                              for p, t, a, ms in DOCS["test"]]))  # fmt: skip
    summary = score(tmp_path, corpus, path, "splits=[test]", "overwrite=true")
    assert summary["test"]["metrics"]["recall"] == 0.5
    assert "label_sets" not in summary
    path.write_text(pubtator(DOCS["test"]).replace("Chemical", "CHEM").replace("Disease", "DIS"))
    with pytest.raises(ConfigError, match="no type in common"):
        score(tmp_path, corpus, path, "splits=[test]", "overwrite=true")


def test_what_is_asked_is_refused_plainly(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "test.pubtator"
    path.write_text(pubtator(DOCS["test"]))
    with pytest.raises(ConfigError, match="dataset=<name>"):
        evaluate_checkpoint(
            compose_config("eval", [f"predictions={path}", f"run_dir={tmp_path / 'r'}"])
        )
    with pytest.raises(ConfigError, match="one of them"):
        score(tmp_path, corpus, path, f"ckpt_path={tmp_path}")
    with pytest.raises(ConfigError, match="attacks a model"):
        score(tmp_path, corpus, path, "splits=[test]", "robustness=default")
    with pytest.raises(ConfigError, match="predictions=<file>"):
        evaluate_checkpoint(compose_config("eval", [f"run_dir={tmp_path / 'r'}"]))


def test_the_format_is_told_by_name_or_first_line(tmp_path: Path) -> None:
    assert detect_predictions_format(tmp_path) == "brat"
    for name, fmt in [("a.jsonl", "jsonl"), ("b.jsonl.gz", "jsonl"), ("c.xml", "bioc"),
                      ("CDR_TestSet.PubTator.txt", "pubtator"), ("d.conll", "conll")]:  # fmt: skip
        assert detect_predictions_format(tmp_path / name) == fmt
    (tmp_path / "e.txt").write_text("1|t|A title\n1|a|An abstract\n")
    assert detect_predictions_format(tmp_path / "e.txt") == "pubtator"
    (tmp_path / "f.txt").write_text("Aspirin\tB-Chemical\n")
    assert detect_predictions_format(tmp_path / "f.txt") == "conll"
    (tmp_path / "g.txt").write_text("just text\n")
    with pytest.raises(PredictionsError, match="predictions_format="):
        detect_predictions_format(tmp_path / "g.txt")
