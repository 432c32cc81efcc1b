"""What a run folder says about its run: why training stopped, and its README."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from bioner.config import compose_config
from bioner.data.document import Document, Span
from bioner.errors import ConfigError
from bioner.evaluation import evaluate
from bioner.models.module import scoring_metric_names
from bioner.runtime.build import check_monitors
from bioner.runtime.run import training_outcome, warn_early_stopping_with_max_steps


def fake_trainer(**kwargs):
    early = SimpleNamespace(
        stopping_reason=kwargs.pop("early", EarlyStoppingReason.NOT_STOPPED),
        stopping_reason_message="Monitored metric val/f1 did not improve in the last 3 records.",
        monitor="val/f1",
    )
    base = dict(
        interrupted=False,
        early_stopping_callbacks=[early],
        checkpoint_callbacks=[],
        max_steps=-1,
        max_epochs=10,
        global_step=6,
        current_epoch=5,
        should_stop=False,
    )
    return SimpleNamespace(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"early": EarlyStoppingReason.PATIENCE_EXHAUSTED}, "early stopping (Monitored metric"),
        ({"max_steps": 6}, "max_steps=6 reached"),
        ({"current_epoch": 10}, "max_epochs=10 reached"),
        ({"interrupted": True}, "interrupted"),
        ({"should_stop": True}, "a callback or limit stopped it"),
    ],
)
def test_the_stop_reason_is_named(changes: dict, reason: str) -> None:
    outcome = training_outcome(fake_trainer(**changes))
    assert outcome["stop_reason"].startswith(reason)
    assert outcome["steps"] == 6 and outcome["best_epoch"] is None


def test_max_steps_with_early_stopping_warns(caplog: pytest.LogCaptureFixture) -> None:
    overrides = ["run_dir=/tmp/never-written", "trainer.max_steps=20"]
    with caplog.at_level(logging.WARNING):
        warn_early_stopping_with_max_steps(compose_config("train", overrides))
    assert "callbacks.early_stopping=null" in caplog.text
    caplog.clear()
    off = compose_config("train", [*overrides, "callbacks.early_stopping=null"])
    with caplog.at_level(logging.WARNING):
        warn_early_stopping_with_max_steps(off)
    assert caplog.text == ""


def test_a_new_run_in_the_folder_of_an_earlier_one_is_refused_or_replaces_it(
    tmp_path: Path,
) -> None:
    from bioner.errors import ConfigError
    from bioner.runtime.run import prepare_run_dir

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"earlier")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "wandb").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    base = [f"run_dir={tmp_path}", "model=tiny"]
    with pytest.raises(ConfigError, match=r"holds an earlier run \(metrics.json, checkpoints/\)"):
        prepare_run_dir(compose_config("train", base))
    assert (tmp_path / "metrics.json").is_file()
    # Continuing it is what ckpt_path=last is for; bioner-eval has no such guard.
    prepare_run_dir(compose_config("train", [*base, "ckpt_path=last"]))
    # overwrite=true removes the earlier results only: W&B's offline runs and your files stay.
    prepare_run_dir(compose_config("train", [*base, "overwrite=true"]))
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()
    assert (tmp_path / "wandb").is_dir() and (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "config.yaml").is_file()
    # bioner-eval into a training run's folder: its scores would be replaced; overwrite=true
    # removes them but never the checkpoints it may be scoring.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"trained")
    (tmp_path / "metrics.json").write_text("{}")
    scored = [f"run_dir={tmp_path}", "ckpt_path=x"]
    with pytest.raises(ConfigError, match=r"\(metrics.json\)"):
        prepare_run_dir(compose_config("eval", scored))
    prepare_run_dir(compose_config("eval", [*scored, "overwrite=true"]))
    assert not (tmp_path / "metrics.json").exists()
    assert (tmp_path / "checkpoints" / "best.ckpt").read_bytes() == b"trained"


def test_the_command_line_check_comes_before_hydra_writes_into_the_folder(
    tmp_path: Path,
) -> None:
    """On the command line the folder is checked before Hydra writes .hydra/ into it: a refused
    run must not replace the earlier run's record of how it was started."""
    from bioner.cli.app import check_run_dir
    from bioner.errors import ConfigError

    run = [f"run_dir={tmp_path}", "model=tiny"]
    check_run_dir("train", run)  # an empty folder
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"holds an earlier run \(model/\)"):
        check_run_dir("train", run)
    check_run_dir("train", [*run, "ckpt_path=last"])
    check_run_dir("train", [*run, "overwrite=true"])
    check_run_dir("eval", [*run, "ckpt_path=x"])  # model/ is what bioner-eval may be scoring
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"\(metrics.json\), .*\. Give another run_dir"):
        check_run_dir("eval", [*run, "ckpt_path=x"])  # its ckpt_path continues nothing
    check_run_dir("eval", [*run, "ckpt_path=x", "overwrite=true"])
    with pytest.raises(ConfigError, match="Continue it with ckpt_path=last"):
        check_run_dir("pretrain", [*run, "ckpt_path=null"])


def test_a_readme_while_running_says_how_to_resume(tmp_path: Path) -> None:
    from bioner.runtime.run import write_run_readme

    cfg = compose_config("train", [f"run_dir={tmp_path}"])
    (tmp_path / "checkpoints").mkdir()
    text = write_run_readme(tmp_path, cfg, {"run_name": "x"}).read_text()
    assert "Still running" in text and "ckpt_path=last" in text
    assert "- `checkpoints/`" in text and "- `model/`" not in text


def test_a_monitor_that_training_never_logs_is_refused_before_training() -> None:
    reader = SimpleNamespace(
        entity_types=["Chemical", "Disease"], scored_members=lambda: ["cdr", "ncbi"]
    )
    names = scoring_metric_names("val", reader.entity_types, reader.scored_members())
    # The names are those the module logs: the span evaluation's, the loss, each corpus's.
    doc = Document("d", "Aspirin and fever", [Span(0, 7, "Chemical"), Span(12, 17, "Disease")])
    assert {f"val/{k}" for k in evaluate([doc], [doc.spans]).metrics()} < set(names)
    assert {"val/loss", "val/ncbi/f1", "val/f1_Disease"} < set(names)

    def check(*overrides: str) -> None:
        cfg = compose_config("train", ["run_dir=/tmp/never-written", *overrides])
        check_monitors(cfg.callbacks, reader)

    check()  # val/f1, the default
    check("callbacks.model_checkpoint.monitor=val/ncbi/f1", "callbacks.early_stopping=null")
    check("callbacks.early_stopping.monitor=val/f1_Chemical")
    check("callbacks.early_stopping.monitor=train/sequences_per_s")
    with pytest.raises(
        ConfigError,
        match=r"^callbacks.model_checkpoint.monitor=val/cdr5/f1: .*"
        r"did you mean val/cdr/f1 or .*val/<corpus>/f1 \(<corpus>: cdr, ncbi\)",
    ):
        check("callbacks.model_checkpoint.monitor=val/cdr5/f1")
    with pytest.raises(ConfigError, match=r"early_stopping.monitor=f1: .*did you mean val/f1 or"):
        check("callbacks.early_stopping.monitor=f1")
    with pytest.raises(ConfigError, match=r"train/loss: .*logged per step, not per epoch"):
        check("callbacks.early_stopping.monitor=train/loss")
    # A corpus that is trained on only (dataset.train_only) has no devel scores to monitor.
    reader.scored_members, reader.train_only = lambda: ["cdr"], ("ncbi",)
    with pytest.raises(
        ConfigError,
        match=r"val/ncbi/f1: .*\(ncbi is in dataset.train_only: it is trained on, never scored\)"
        r".*\(<corpus>: cdr\)\. Training",
    ):
        check("callbacks.model_checkpoint.monitor=val/ncbi/f1")
    # Without several corpora there is no per-corpus name to suggest.
    single = SimpleNamespace(entity_types=["Gene"])
    with pytest.raises(ConfigError, match=r"val/f1_<type> \(<type>: Gene\)\. Training"):
        check_monitors(
            compose_config(
                "train", ["run_dir=/x", "callbacks.early_stopping.monitor=val/f2"]
            ).callbacks,
            single,
        )
