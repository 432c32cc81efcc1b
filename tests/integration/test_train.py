"""End-to-end training through the real configs: ``compose -> shrink -> train(cfg)``.

The tiny BERT stands in for real encoders; ``slow`` tests run MiniLM and DDP (CI runs them too).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from bioner.config import CONFIG_DIR, compose_config
from bioner.data.alignment import Alignment
from bioner.data.document import Document
from bioner.data.readers import CorpusNotFoundError
from bioner.errors import ConfigError, FormatError
from bioner.eval import evaluate_checkpoint
from bioner.inference import Tagger
from bioner.inference.formats import read_jsonl, record_document
from bioner.models.encoders import TinyBert
from bioner.reporting.runs import ReportError
from bioner.train import train

REPO = Path(__file__).resolve().parents[2]


def test_a_model_trained_with_context_is_scored_and_tags_with_it(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """alignment.context: training, bioner-eval and the exported tagger read each sentence with
    its neighbours alike (the CRF head too), and the run's README says the pipeline does not."""
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        f"paths.data_dir={shared_data}",
        "dataset=bc5cdr_pubtator",
        "alignment.context=16",
        "module.head=crf",
        "data.limit_documents=6",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
    )
    summary = train(cfg)
    assert_scores_match_predictions(tmp_path, summary)
    record = json.loads((tmp_path / "model" / "bioner.json").read_text())
    assert record["alignment"]["context"] == 16
    evaluated = evaluate_run(tmp_path, tmp_path / "eval", "data.limit_documents=6")
    for split in ("devel", "test"):
        assert evaluated[split]["metrics"] == summary[split]["metrics"]
    records = read_jsonl(tmp_path / "predictions" / "test.jsonl")
    docs = instantiate(cfg.dataset).load("test")[: len(records)]
    tagger = Tagger.load(tmp_path, device="cpu")
    assert tagger.members[0].alignment.context == 16
    assert tagger.predict_documents(docs) == [r["spans"] for r in records]
    assert "without the neighbouring sentences" in (tmp_path / "README.md").read_text()


def child_env() -> dict[str, str]:
    """The environment of a ``python -m bioner...`` subprocess: this checkout first on the path,
    what the caller had there after it (a GPU machine's bundle may live on PYTHONPATH)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run_train(cwd: Path, run_dir: Path, overrides: list[str], timeout: int = 900) -> dict:
    """``python -m bioner.train run_dir=<run_dir> <QUIET> <overrides>`` in ``cwd`` (in its own
    process, as a user runs it); asserts it succeeded and returns its ``metrics.json``."""
    done = subprocess.run(
        [sys.executable, "-m", "bioner.train", f"run_dir={run_dir}", *QUIET, *overrides],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())


QUIET = [
    "logger=none",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def tiny_overrides(tiny_model_dir: Path) -> list[str]:
    # The session's tiny BERT lives in <cache>/encoders/<name>; model=tiny finds it there.
    return ["model=tiny", f"model.cache_dir={tiny_model_dir.parent.parent}"]


def assert_scores_match_predictions(run_dir: Path, summary: dict, splits=("devel", "test")) -> None:
    """The reported strict scores are those of the prediction files against their gold spans.

    (Where a short run of the random tiny BERT leaves no known F1 threshold, this is what can
    be checked: the figures in metrics.json are the predictions' own.)
    """
    from bioner.evaluation import evaluate

    for split in splits:
        records = read_jsonl(run_dir / "predictions" / f"{split}.jsonl")
        docs = [record_document(r) for r in records]
        expected = evaluate(docs, [r["spans"] for r in records]).metrics()
        metrics = summary[split]["metrics"]
        assert summary[split]["documents"] == len(records)
        for key in ("tp", "fp", "fn", "precision", "recall", "f1"):
            assert metrics[key] == pytest.approx(expected[key], abs=1e-12), (split, key)


def compose(run_dir: Path, tiny_model_dir: Path, *overrides: str) -> DictConfig:
    return compose_config(
        "train", [f"run_dir={run_dir}", *QUIET, *tiny_overrides(tiny_model_dir), *overrides]
    )


def compose_small(
    run_dir: Path, tiny_model_dir: Path, shared_data: Path, *overrides: str
) -> DictConfig:
    """:func:`compose` for a short run of the tiny BERT on the first 32 BC5CDR documents."""
    return compose(
        run_dir,
        tiny_model_dir,
        f"paths.data_dir={shared_data}",
        "data.limit_documents=32",
        *overrides,
    )


# Corpora for the every-dataset run: the real ones (shared_data) where they are public, the
# synthetic fixtures for the licensed/unavailable ones and the generic IOB folder.
REAL = ["bc5cdr", "bc5cdr_chem", "bc5cdr_disease", "ncbi_disease", "bc2gm", "bc5cdr_pubtator"]
FIXTURE_DIRS = {
    "iob": "iob",
    "brat": "brat",
    "bioc": "bioc",
    "medmentions_st21pv": "pubtator/medmentions_release",
    "i2b2_2010": "i2b2",
}
# i2b2 2010 has no devel split of its own: its run also redraws the splits by ratio (by note) and
# filters, which must reach metrics.json; and it normalises its text (preprocess), which
# bioner-eval and the exported tagger must repeat.
PREPARATION = {
    "i2b2_2010": [
        "dataset/split=ratio",
        "dataset.split.ratios=[0.5,0.25,0.25]",
        "dataset.filter.drop_empty_train=true",
        "preprocess=[shorthand,spelling]",
        "preprocess.spelling.english=false",
    ]
}
# Shorthand for words of the i2b2 fixture, so that its text is rewritten.
FIXTURE_SHORTHAND = "admitted\twas taken in\nman\tmale\nchest\tthorax\n"


def test_dataset_lists_are_complete() -> None:
    configs = {p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml")}
    # multi reads the others: test_multi_corpus_run_scores_each_corpus_as_eval_does.
    assert configs == set(REAL) | set(FIXTURE_DIRS) | {"multi"}


@pytest.mark.parametrize("dataset", REAL + sorted(FIXTURE_DIRS))
def test_every_dataset_config_trains_with_the_tiny_bert(
    dataset: str, tmp_path: Path, tiny_model_dir: Path, fixtures_dir: Path, request
) -> None:
    shorthand = []
    if "preprocess=[shorthand,spelling]" in PREPARATION.get(dataset, []):
        table = tmp_path / "shorthand.tsv"
        table.write_text(FIXTURE_SHORTHAND)
        shorthand = [f"preprocess.shorthand.path={table}"]
    if dataset in FIXTURE_DIRS:
        data = [f"dataset.data_dir={fixtures_dir / FIXTURE_DIRS[dataset]}"]
    else:
        data = [f"paths.data_dir={request.getfixturevalue('shared_data')}"]
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        f"dataset={dataset}",
        *data,
        "data.limit_documents=12",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "bootstrap_samples=0",
        *PREPARATION.get(dataset, []),
        *shorthand,
        *(["module.head=multilabel"] if dataset == "medmentions_st21pv" else []),
    )
    summary = train(cfg)
    assert_scores_match_predictions(tmp_path, summary)
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    if dataset in PREPARATION:
        prepared = summary["dataset_preparation"]
        assert prepared["split"]["ratios"] == [0.5, 0.25, 0.25]
        assert set(prepared["filter"]) == {"train", "devel", "test"}
        assert summary["devel"]["documents"] == prepared["filter"]["devel"]["kept"]
        # Predictions are on the original text (assert_scores_match_predictions read them);
        # bioner-eval restores the fitted preprocessing from the checkpoint and scores alike,
        eval_cfg = compose_config(
            "eval",
            [
                f"ckpt_path={tmp_path / 'checkpoints' / 'best.ckpt'}",
                f"run_dir={tmp_path / 'eval'}",
                "bootstrap_samples=0",
                "trainer.enable_progress_bar=false",
            ],
        )
        evaluated = evaluate_checkpoint(eval_cfg)
        for split in ("devel", "test"):
            assert evaluated[split]["metrics"] == summary[split]["metrics"]
        # and the exported tagger rewrites as training did: the test predictions again.
        tagger = Tagger.load(tmp_path, device="cpu")
        assert "thorax" in json.dumps(tagger.members[0].preprocess.record())
        records = read_jsonl(tmp_path / "predictions" / "test.jsonl")
        docs = instantiate(cfg.dataset).load("test")[: len(records)]
        assert [d.text for d in docs] == [r["text"] for r in records]
        assert tagger.predict_documents(docs) == [r["spans"] for r in records]
    elif dataset == "brat":
        # The fixture's one selection with a trailing space was trimmed: metrics.json says so.
        trimmed = {"mentions trimmed of surrounding whitespace": 1}
        assert summary["dataset_preparation"] == {"repairs": {"train": trimmed}}
    else:
        assert "dataset_preparation" not in summary
    if dataset == "medmentions_st21pv":
        # The synthetic release has nested mentions: this run also takes the multi-label head
        # (below) through training, scoring, export and the tagger.
        record = json.loads((tmp_path / "model" / "bioner.json").read_text())
        assert record["alignment"]["head"] == "multilabel"
        spans = Tagger.load(tmp_path).predict("Breast cancer surgery in nursing homes.")
        assert all(0 <= s.start < s.end <= 39 for s in spans)


def test_multi_corpus_run_scores_each_corpus_as_eval_does(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    members = [
        "+dataset@dataset.corpora.chem=bc5cdr_chem",
        "+dataset@dataset.corpora.ncbi=ncbi_disease",
    ]
    cfg = compose_small(
        tmp_path / "run",
        tiny_model_dir,
        shared_data,
        "dataset=multi",
        *members,
        "dataset.name=chem+ncbi",
        "data.limit_documents=16",
        "trainer.max_epochs=1",
        "bootstrap_samples=20",
        "logger=csv",
    )
    summary = train(cfg)
    run_dir = tmp_path / "run"
    # Each member's devel scores reach the loggers every epoch.
    assert "val/ncbi/f1" in (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
    # Predictions of a type a corpus does not annotate are written, and not scored.
    assert_scores_match_predictions(run_dir, summary)
    for split in ("devel", "test"):
        section = summary[split]
        corpora = section["corpora"]
        assert list(corpora) == ["chem", "ncbi"] and section["documents"] == 32
        assert corpora["ncbi"]["types"] == ["Disease"] and corpora["ncbi"]["documents"] == 16
        assert [r["type"] for r in corpora["ncbi"]["per_type"]] in ([], ["Disease"])
        for stat in ("tp", "fp", "fn"):
            total = sum(c["metrics"][stat] for c in corpora.values())
            assert total == section["metrics"][stat]
        records = read_jsonl(run_dir / "predictions" / f"{split}.jsonl")
        chemicals_in_ncbi = sum(
            s.label == "Chemical" for r in records if r["corpus"] == "ncbi" for s in r["spans"]
        )
        assert corpora["ncbi"]["unscored_predictions"].get("Chemical", 0) == chemicals_in_ncbi
        # Each corpus's span scores too: its judged spans and its gold, adding up to the split's.
        for key in ("spans", "gold"):
            total = sum(c["confidence"][key] for c in corpora.values())
            assert total == section["confidence"][key]
        assert all(r["id"].startswith(("chem/", "ncbi/")) for r in records)
    # bioner-eval rebuilds both member readers from the checkpoint and scores alike,
    base = [f"ckpt_path={run_dir}", "bootstrap_samples=20", "trainer.enable_progress_bar=false"]
    evaluated = evaluate_checkpoint(
        compose_config("eval", [*base, f"run_dir={tmp_path / 'eval'}", "data.limit_documents=16"])
    )
    for split in ("devel", "test"):
        assert evaluated[split]["metrics"] == summary[split]["metrics"]
        assert evaluated[split]["corpora"] == summary[split]["corpora"]
    # A data folder of its own is refused: the members have theirs (paths.data_dir moves them).
    with pytest.raises(ConfigError, match=r"several corpora \(chem, ncbi\).*paths.data_dir"):
        evaluate_checkpoint(
            compose_config(
                "eval", [*base, f"run_dir={tmp_path / 'x'}", f"dataset.data_dir={tmp_path}"]
            )
        )
    # and on one member corpus alone, it scores the one type that corpus annotates.
    alone = evaluate_checkpoint(
        compose_config(
            "eval",
            [
                *base,
                f"run_dir={tmp_path / 'ncbi'}",
                "dataset=ncbi_disease",
                "splits=[test]",
                f"paths.data_dir={shared_data}",
                "data.limit_documents=16",
            ],
        )
    )
    assert alone["label_sets"]["scored_types"] == ["Disease"]
    ncbi = summary["test"]["corpora"]["ncbi"]["metrics"]
    assert {k: alone["test"]["metrics"][k] for k in ("tp", "fp", "fn")} == {
        k: ncbi[k] for k in ("tp", "fp", "fn")
    }
    # bioner-report --corpus pairs the member with a run of that corpus alone, document by
    # document, and reports the member's own scores.
    from bioner.reporting import build_report

    single = compose_small(
        tmp_path / "single",
        tiny_model_dir,
        shared_data,
        "dataset=ncbi_disease",
        "data.limit_documents=16",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
    )
    train(single)
    report = build_report(
        [run_dir, tmp_path / "single"],
        baseline="dataset=ncbi_disease",
        bootstrap_samples=50,
        corpus="ncbi",
    )
    multi = next(s for s in report.settings if not s.is_baseline)
    assert multi.test is not None and multi.test.pairs == 1
    assert multi.metrics["f1"].mean == pytest.approx(ncbi["f1"])
    assert multi.test.result["a"] == pytest.approx(ncbi["f1"])
    with pytest.raises(ReportError, match="no corpus 'gene' among the run's corpora"):
        build_report([run_dir], corpus="gene")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, shared_data: Path):
    """One short tiny-BERT run on a BC5CDR subset, shared by the tests of its artefacts."""
    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose(
        run_dir,
        tiny_model_dir,
        f"paths.data_dir={shared_data}",
        "data.limit_documents=40",
        "data.batch_size=8",
        "trainer.max_epochs=2",
        "bootstrap_samples=50",
        "logger=csv",
    )
    return run_dir, cfg, train(cfg)


def test_a_run_writes_every_artefact(run) -> None:
    run_dir, cfg, summary = run
    for name in (
        "config.yaml",
        "metrics.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "confusion_devel.png",
        "confusion_test.png",
        "confidence_devel.png",
        "confidence_test.png",
        "errors_devel.tsv",
        "errors_test.tsv",
        "model/config.json",
        "model/tokenizer.json",
        "model/bioner.json",
        "csv/metrics.csv",
        "csv/hparams.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(summary))
    for split in ("devel", "test"):
        section = summary[split]
        assert section["documents"] == 40
        assert {"f1", "precision", "recall", "f1_Chemical", "f1_Disease"} <= set(section["metrics"])
        assert [row["type"] for row in section["per_type"]] == ["Chemical", "Disease"]
        low, high = section["ci95"]["f1"]
        assert low <= section["metrics"]["f1"] <= high
        records = read_jsonl(run_dir / "predictions" / f"{split}.jsonl")
        assert len(records) == 40 and all("gold" in r for r in records)
        conll = (run_dir / "predictions" / f"{split}.conll").read_text()
        assert conll.count("-DOCSTART-") == 40
        # Span scores: in the predictions file, and summed up in the confidence section.
        scores = [span.score for r in records for span in r["spans"]]
        confidence = section["confidence"]
        assert confidence["spans"] == len(scores) and all(0 <= x <= 1 for x in scores)
        assert sum(b["spans"] for b in confidence["reliability"]) == len(scores)
        assert confidence["best"]["f1"] >= section["metrics"]["f1"]
        # One line per error of the confusion matrix, after the header.
        errors = (run_dir / f"errors_{split}.tsv").read_text().splitlines()
        wrong = sum(n for k, n in section["confusion"]["summary"].items() if k != "correct")
        assert len(errors) == 1 + wrong
    # The logged metrics of the final evaluation pass match metrics.json.
    csv_text = (run_dir / "csv" / "metrics.csv").read_text()
    assert "val/f1" in csv_text and "test/f1_Chemical" in csv_text
    # The whole resolved config reached the logger.
    assert "model_checkpoint" in (run_dir / "csv" / "hparams.yaml").read_text()
    assert summary["precision"] in ("bf16-mixed", "32-true")
    # The exported folder records it, for the Tagger's precision=auto.
    assert (
        json.loads((run_dir / "model" / "bioner.json").read_text())["precision"]
        == summary["precision"]
    )
    assert summary["checkpoint"] == str(run_dir / "checkpoints" / "best.ckpt")
    assert len(summary["train_sequences_per_s"]) == 2
    # Loggers see the precision chosen, and learning rates named by parameter group.
    hparams = (run_dir / "csv" / "hparams.yaml").read_text()
    assert f"precision: {summary['precision']}" in hparams and "precision: auto" not in hparams
    assert "lr/weights" in csv_text and "lr/biases_norms" in csv_text
    # How training ended, in metrics.json, the loggers and the run folder's README.
    training = summary["training"]
    assert training["stop_reason"] == "max_epochs=2 reached" and training["epochs"] == 2
    assert training["steps"] == 10 and training["best_epoch"] in (0, 1)
    assert "training/stop_reason" in hparams
    readme = (run_dir / "README.md").read_text()
    assert "Training stopped: max_epochs=2 reached, after 10 steps in 2 epochs" in readme
    assert f"bioner-eval ckpt_path={run_dir.resolve()}" in readme
    assert "- `checkpoints/`" in readme and "- `model/`" in readme


def evaluate_run(ckpt: str | Path, out: Path, *overrides: str) -> dict:
    """``bioner-eval`` of ``ckpt`` on the 40 documents per split of the module's run."""
    return evaluate_checkpoint(
        compose_config(
            "eval",
            [
                f"ckpt_path={ckpt}",
                f"run_dir={out}",
                "data.limit_documents=40",
                "bootstrap_samples=0",
                "trainer.enable_progress_bar=false",
                *overrides,
            ],
        )
    )


def test_eval_of_the_best_checkpoint_reproduces_the_run(run, tmp_path: Path) -> None:
    run_dir, cfg, summary = run
    eval_cfg = compose_config(
        "eval",
        [
            f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
            f"run_dir={tmp_path}",
            "data.limit_documents=40",
            "bootstrap_samples=0",
            "trainer.enable_progress_bar=false",
        ],
    )
    evaluated = evaluate_checkpoint(eval_cfg)
    for split in ("devel", "test"):
        assert evaluated[split]["metrics"] == summary[split]["metrics"]
    assert (tmp_path / "predictions" / "test.jsonl").read_text() == (
        run_dir / "predictions" / "test.jsonl"
    ).read_text()


def test_eval_with_min_score_devel_scores_what_the_confidence_section_foresaw(
    run, tmp_path: Path
) -> None:
    run_dir, cfg, summary = run
    best = summary["devel"]["confidence"]["best"]
    # min_score=devel (the default): chosen on the raw devel predictions.
    evaluated = evaluate_run(run_dir, tmp_path, "postprocess=threshold")
    assert evaluated["postprocess"]["steps"] == [
        f"ScoreThreshold(min_score={best['min_score']:g}, chosen on devel)"
    ]
    for key in ("precision", "recall", "f1"):
        assert evaluated["devel"]["metrics"][key] == pytest.approx(best[key])
    assert evaluated["postprocess"]["devel"]["f1_raw"] == summary["devel"]["metrics"]["f1"]
    # The confidence section describes the model's own scores, before the threshold.
    assert evaluated["test"]["confidence"] == summary["test"]["confidence"]
    kept = read_jsonl(tmp_path / "predictions" / "test.jsonl")
    assert all(s.score >= best["min_score"] for r in kept for s in r["spans"])


def test_eval_of_an_ensemble_of_copies_is_the_run_and_reports_its_members(
    run, tmp_path: Path
) -> None:
    run_dir, cfg, summary = run
    evaluated = evaluate_run(f"[{run_dir},{run_dir},{run_dir}]", tmp_path)
    ensemble = evaluated["ensemble"]
    assert ensemble["min_votes"] == 2 and len(ensemble["members"]) == 3
    assert ensemble["member_seeds"] == [cfg.seed] * 3 and ensemble["member_folds"] == [None] * 3
    for split in ("devel", "test"):
        f1 = summary[split]["metrics"]["f1"]
        assert ensemble[split] == {"member_f1": [f1, f1, f1], "f1": f1}
        assert evaluated[split]["metrics"] == summary[split]["metrics"]
    with pytest.raises(ConfigError, match=r"min_votes=4: from 1 to the number of models \(3\)"):
        evaluate_checkpoint(
            compose_config(
                "eval",
                [
                    f"ckpt_path=[{run_dir},{run_dir},{run_dir}]",
                    "min_votes=4",
                    f"run_dir={tmp_path / 'a'}",
                ],
            )
        )
    with pytest.raises(ConfigError, match="robustness attacks one model"):
        evaluate_checkpoint(
            compose_config(
                "eval",
                [
                    f"ckpt_path=[{run_dir},{run_dir}]",
                    "robustness=default",
                    f"run_dir={tmp_path / 'b'}",
                ],
            )
        )


def test_eval_scores_the_checkpoint_under_another_decode_rule(run, tmp_path: Path) -> None:
    run_dir, cfg, summary = run
    evaluated = evaluate_run(run_dir, tmp_path, "splits=[test]", "decode_rule=viterbi")
    assert evaluated["decode_rule"] == "viterbi"
    # The tagger under the same rule gives the spans that were scored.
    records = read_jsonl(tmp_path / "predictions" / "test.jsonl")
    docs = instantiate(cfg.dataset).load("test")[: len(records)]
    tagger = Tagger.load(run_dir, device="cpu", decode_rule="viterbi")
    assert tagger.predict_documents(docs) == [r["spans"] for r in records]
    assert records != read_jsonl(run_dir / "predictions" / "test.jsonl")


def test_eval_without_the_training_encoder_reads_the_run_s_model_folder(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """The encoder folder a run trained on is gone (moved, deleted; or a hub model offline):
    bioner-eval takes the tokenizer and config from the run's exported model/ and scores as
    the run did; without that either, one message says what to restore."""
    import shutil

    from bioner.models.encoders import EncoderNotFoundError

    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_model_dir, encoder)
    run_dir = tmp_path / "run"
    cfg = compose_config(
        "train",
        [
            f"run_dir={run_dir}",
            *QUIET,
            "model=hub",
            f"model.name_or_path={encoder}",
            f"paths.data_dir={shared_data}",
            "data.limit_documents=16",
            "trainer.max_epochs=1",
            "bootstrap_samples=0",
        ],
    )
    summary = train(cfg)
    shutil.rmtree(encoder)

    def evaluate(run_name: str) -> dict:
        overrides = [
            f"ckpt_path={run_dir}",
            f"run_dir={tmp_path / run_name}",
            "bootstrap_samples=0",
        ]
        return evaluate_checkpoint(compose_config("eval", [*overrides, "data.limit_documents=16"]))

    assert evaluate("eval")["test"]["metrics"] == summary["test"]["metrics"]
    shutil.rmtree(run_dir / "model")
    with pytest.raises(EncoderNotFoundError, match=r"the encoder it was trained on .* restore"):
        evaluate("eval2")


class Killed(Exception):
    """Raised by :class:`KillAtEpoch` to simulate a run that dies."""


class KillAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise Killed(f"killed at the start of epoch {self.epoch}")


@pytest.mark.parametrize("augmentation", ["none", "mix"])
def test_resume_from_last_equals_an_uninterrupted_run(
    augmentation: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    settings = [
        f"augmentation={augmentation}",
        f"paths.data_dir={shared_data}",
        "data.limit_documents=48",
        "data.batch_size=8",
        "trainer.max_epochs=3",
        "bootstrap_samples=0",
        "module.lr=1e-3",
    ]
    full = train(compose(tmp_path / "full", tiny_model_dir, *settings))

    with pytest.raises(Killed):
        train(compose(tmp_path / "killed", tiny_model_dir, *settings), [KillAtEpoch(2)])
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").is_file()
    resumed = train(compose(tmp_path / "killed", tiny_model_dir, *settings, "ckpt_path=last"))

    for split in ("devel", "test"):
        assert resumed[split]["metrics"] == full[split]["metrics"]
    # The speeds of the killed attempt's two epochs came back with the checkpoint.
    assert len(resumed["train_sequences_per_s"]) == len(full["train_sequences_per_s"]) == 3
    assert all(rate > 0 for rate in resumed["train_sequences_per_s"])
    a = torch.load(tmp_path / "full/checkpoints/last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "killed/checkpoints/last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_ckpt_path_last_without_a_last_checkpoint_is_an_error(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    cfg = compose(tmp_path, tiny_model_dir, f"paths.data_dir={shared_data}", "ckpt_path=last")
    with pytest.raises(FileNotFoundError, match="run_dir=<run folder> ckpt_path=last"):
        train(cfg)


@pytest.mark.parametrize(
    "stop", [["trainer.max_steps=3"], ["trainer.limit_val_batches=0", "trainer.max_epochs=1"]]
)
def test_a_run_without_validation_scores_its_last_weights(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path, stop: list[str]
) -> None:
    """Stopped by max_steps within the first epoch, or never validating, a run with the
    default early stopping finishes: nothing to stop on, no best checkpoint, its last weights
    scored and exported."""
    cfg = compose_small(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "data.batch_size=4",
        "bootstrap_samples=0",
        *stop,
    )
    assert cfg.callbacks.early_stopping is not None
    metrics = train(cfg)
    assert metrics["training"]["best_epoch"] is None
    assert "test" in metrics and (tmp_path / "model" / "config.json").is_file()


def test_early_stopping_ends_a_run_whose_devel_f1_stops_improving(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """Checked after each validation, early stopping still ends the run: no epoch improves
    on the first by min_delta=1, so patience 1 stops it after the second of five epochs."""
    cfg = compose_small(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "data.batch_size=8",
        "bootstrap_samples=0",
        "test=false",
        "trainer.max_epochs=5",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=1.0",
    )
    training = train(cfg)["training"]
    assert training["stop_reason"].startswith("early stopping"), training
    assert training["epochs"] == 2


def test_resuming_from_a_checkpoint_cut_short_is_a_user_error(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    cfg = compose(tmp_path, tiny_model_dir, f"paths.data_dir={shared_data}", "ckpt_path=last")
    with pytest.raises(FormatError, match="last.ckpt is not a checkpoint that bioner can read"):
        train(cfg)


def test_missing_corpus_stops_before_any_model_is_loaded(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bioner.data import download

    def offline(*args, **kwargs):
        raise download.URLError("no network")

    def no_model(*args, **kwargs):
        raise AssertionError("weights were loaded before the corpus was checked")

    monkeypatch.setattr(download, "urlopen", offline)
    monkeypatch.setattr(TinyBert, "load_model", no_model)
    cfg = compose(tmp_path, tiny_model_dir, f"paths.data_dir={tmp_path / 'empty'}")
    with pytest.raises(CorpusNotFoundError, match="BIONER_DATA_DIR"):
        train(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Built for the final scores: once found only after the whole run had trained.
        (["robustness=default", "robustness.text_kinds=[typo]"], r"^robustness.text_kinds"),
        (["postprocess=overlaps", "postprocess.overlaps.keep=big"], r"^postprocess.overlaps:"),
        (["attack=pgd", "attack.steps=0"], r"^attack: steps must be at least 1"),
        # Past the encoder's positions: a shape error in the first batch that held a long unit.
        (["alignment.max_length=513"], r"^alignment.max_length=513 is longer than the encoder"),
    ],
)
def test_a_value_that_a_piece_refuses_stops_the_run_before_any_weights_load(
    tmp_path: Path,
    tiny_model_dir: Path,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: list[str],
    message: str,
) -> None:
    from bioner.errors import ConfigError

    def no_model(*args, **kwargs):
        raise AssertionError("weights were loaded before the config was checked")

    monkeypatch.setattr(TinyBert, "load_model", no_model)
    cfg = compose(tmp_path, tiny_model_dir, f"paths.data_dir={shared_data}", *overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()


class SignalAtStep(L.Callback):
    """Stop training at a step as a signal does: SIGTERM is delivered to this process (Lightning's
    handler notes it and ends the loop at the batch's end); Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signal_name: str, step: int) -> None:
        self.signal_name, self.step = signal_name, step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            if self.signal_name == "SIGTERM":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                raise KeyboardInterrupt


@pytest.mark.parametrize(("signal_name", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_run_stopped_by_a_signal_exits_non_zero_and_says_how_to_continue(
    tmp_path: Path,
    tiny_model_dir: Path,
    shared_data: Path,
    capsys: pytest.CaptureFixture,
    signal_name: str,
    status: int,
) -> None:
    """Lightning exits 0 on SIGTERM (a scheduler's, `timeout`'s) and 1 on Ctrl-C, silently."""
    cfg = compose_small(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "data.batch_size=8",
        "trainer.max_epochs=5",
    )
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as stopped:
            train(cfg, extra_callbacks=[SignalAtStep(signal_name, 6)])  # 4 steps an epoch
    finally:
        for s, handler in handlers.items():  # Lightning ignores Ctrl-C once it has seen one
            signal.signal(s, handler)
    assert stopped.value.code == status
    err = capsys.readouterr().err
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"bioner-train: interrupted ({signal_name}) in epoch 1, at step 6." in err
    assert f"{last} holds the run as it was at the end of epoch 0; continue with:" in err
    assert f"run_dir={tmp_path.resolve()} ckpt_path=last" in err
    readme = (tmp_path / "README.md").read_text()
    assert f"Training stopped: interrupted ({signal_name}), after 6 steps" in readme


class SigtermWhileScoring(L.Callback):
    """SIGTERM in the first batch of the final devel pass (trainer.validate after fitting)."""

    def on_validation_batch_end(self, trainer, *args) -> None:
        if trainer.state.fn == "validate" and not trainer.sanity_checking:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_run_stopped_while_it_is_scored_exits_non_zero_and_says_how_to_score_it(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = compose_small(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "data.batch_size=8",
        "data.eval_batch_size=4",  # more than one batch: Lightning stops after the first
        "trainer.max_epochs=1",
    )
    handler = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stopped:
            train(cfg, extra_callbacks=[SigtermWhileScoring()])
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert stopped.value.code == 143  # Lightning: 0, as if the run had finished
    err = capsys.readouterr().err
    assert "bioner-train: interrupted (SIGTERM) while the trained run was scored" in err
    assert f"bioner-eval ckpt_path={tmp_path.resolve()} scores it" in err
    assert not (tmp_path / "metrics.json").exists()


def words_like_bert(doc_id: str, text: str) -> Document:
    """A document whose words are BERT's pre-tokens (runs of letters/digits, single punctuation)."""
    words = [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]
    return Document(doc_id, text, [], [(0, len(text))], words)


def test_exported_folder_gives_the_same_spans_in_a_transformers_pipeline(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    # Overfit a few sentences so that predictions are confident (a random model's near-ties
    # could be read differently by two correct decoders).
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        f"paths.data_dir={shared_data}",
        "data.limit_documents=16",
        "data.batch_size=4",
        "trainer.max_epochs=40",
        "callbacks.early_stopping=null",
        "module.lr=3e-3",
        "module.warmup_ratio=0.0",
        "bootstrap_samples=0",
    )
    train(cfg)
    folder = tmp_path / "model"
    tagger = pipeline("token-classification", model=str(folder), aggregation_strategy="first")
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    alignment = Alignment()
    id2label = model.config.id2label
    assert set(id2label.values()) == {"O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"}

    # The training sentences, re-split into words the way BERT's pre-tokenizer splits them.
    texts = [doc.text for doc in instantiate(cfg.dataset).load("train")[:16]]
    compared = 0
    for i, text in enumerate(texts):
        doc = words_like_bert(f"s{i}", text)
        features = alignment.encode(doc, tokenizer)
        with torch.no_grad():
            logits = [
                model(input_ids=torch.tensor([f.input_ids])).logits[0].numpy() for f in features
            ]
        probs = [np.exp(x) / np.exp(x).sum(-1, keepdims=True) for x in logits]
        first = [
            p[k].max()
            for f, p in zip(features, probs)
            for k, w in enumerate(f.word_ids)
            if w is not None and (k == 0 or f.word_ids[k - 1] != w)
        ]
        if min(first) < 0.6:
            continue  # a near-tie: the two decoders may legitimately differ
        ours = alignment.decode(doc, features, logits, id2label)
        theirs = sorted((e["start"], e["end"], e["entity_group"]) for e in tagger(text))
        assert [(s.start, s.end, s.label) for s in ours] == theirs, text
        compared += len(ours)
    assert compared >= 5


def test_a_roberta_folder_trains_tags_and_exports(
    tmp_path: Path, roberta_model_dir: Path, shared_data: Path
) -> None:
    """Byte-level BPE end to end: training (with an attack on its embeddings), the tagger and the
    exported folder all see each word with the space mark it has in running text."""
    from transformers import AutoTokenizer, pipeline

    cfg = compose_config(
        "train",
        [
            f"run_dir={tmp_path}",
            *QUIET,
            "model=hub",
            f"model.name_or_path={roberta_model_dir}",
            "model.name=roberta",
            f"paths.data_dir={shared_data}",
            "data.limit_documents=16",
            "trainer.max_epochs=1",
            "attack=fgm",
            "bootstrap_samples=0",
        ],
    )
    summary = train(cfg)
    assert summary["test"]["documents"] == 16
    exported = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert exported.add_prefix_space
    assert exported.tokenize("Aspirin reduces")[0].startswith("Ġ")

    text = "Naloxone reverses the antihypertensive effect of clonidine."
    words = {(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)}
    spans = Tagger.load(tmp_path, precision="32").predict(text)
    starts, ends = {s for s, _ in words}, {e for _, e in words}
    assert all(s.start in starts and s.end in ends for s in spans)
    found = pipeline("token-classification", model=str(tmp_path / "model"))(text)
    assert found and all(0 <= e["start"] <= e["end"] <= len(text) for e in found)


def test_multirun_gives_every_job_its_own_run_folder(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "bioner.train",
        "-m",
        f"paths.log_dir={tmp_path}",
        *QUIET,
        *tiny_overrides(tiny_model_dir),
        f"paths.data_dir={shared_data}",
        "data.limit_documents=12",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
        "alignment=first,all",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p.parent.name for p in tmp_path.glob("train/multiruns/*/*/metrics.json"))
    assert runs == [
        "0_bc5cdr_tiny_first_atk-none_aug-none_s42",
        "1_bc5cdr_tiny_all_atk-none_aug-none_s42",
    ]


@pytest.mark.slow
def test_minilm_learns_bc5cdr_in_a_minute(tmp_path: Path, shared_data: Path) -> None:
    cfg = compose_config(
        "train",
        [
            f"run_dir={tmp_path}",
            *QUIET,
            "experiment=quickstart",
            f"paths.data_dir={shared_data}",
            "data.limit_documents=1200",
            "trainer.max_epochs=2",
            "bootstrap_samples=0",
        ],
    )
    summary = train(cfg)
    assert summary["devel"]["metrics"]["f1"] > 0.5
    assert summary["test"]["metrics"]["f1"] > 0.5


@pytest.mark.slow
def test_ddp_sim_with_fewer_batches_than_ranks_does_not_hang(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    # One training and one evaluation batch for 4 ranks: three ranks repeat it.
    run_dir = tmp_path / "ddp4"
    overrides = [
        *tiny_overrides(tiny_model_dir),
        "trainer=ddp_sim",
        "trainer.devices=4",
        f"paths.data_dir={shared_data}",
        "data.limit_documents=1",
        "data.batch_size=64",
        "data.eval_batch_size=64",
        "data.max_tokens=null",
        "data.eval_max_tokens=null",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
    ]
    metrics = run_train(tmp_path, run_dir, overrides, timeout=600)
    assert metrics["devel"]["documents"] == metrics["test"]["documents"] == 1


@pytest.mark.slow
def test_ddp_sim_trains_and_scores_like_one_process(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    run_dir = tmp_path / "ddp"
    overrides = [
        *tiny_overrides(tiny_model_dir),
        "trainer=ddp_sim",
        f"paths.data_dir={shared_data}",
        "data.limit_documents=61",  # odd, so the ranks' batches cannot split evenly
        "data.batch_size=4",
        "data.eval_batch_size=8",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
    ]
    distributed = run_train(tmp_path, run_dir, overrides, timeout=600)
    assert distributed["devel"]["documents"] == distributed["test"]["documents"] == 61
    # The same checkpoint scored by one process: identical metrics.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # each DDP rank used one thread; keep the arithmetic identical
    try:
        single = evaluate_checkpoint(
            compose_config(
                "eval",
                [
                    f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
                    f"run_dir={tmp_path / 'single'}",
                    "data.limit_documents=61",
                    "data.eval_batch_size=8",
                    "bootstrap_samples=0",
                    "trainer.enable_progress_bar=false",
                ],
            )
        )
    finally:
        torch.set_num_threads(threads)
    for split in ("devel", "test"):
        assert single[split]["metrics"] == distributed[split]["metrics"]
