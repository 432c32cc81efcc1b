"""What a run folder says about its run: why training stopped, and its README."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from bioner.config import compose_config
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


def test_a_readme_while_running_says_how_to_resume(tmp_path: Path) -> None:
    from bioner.runtime.run import write_run_readme

    cfg = compose_config("train", [f"run_dir={tmp_path}"])
    (tmp_path / "checkpoints").mkdir()
    text = write_run_readme(tmp_path, cfg, {"run_name": "x"}).read_text()
    assert "Still running" in text and "ckpt_path=last" in text
    assert "- `checkpoints/`" in text and "- `model/`" not in text
