"""StreamedCheckpointIO: checkpoints written to disk directly, atomically, and loadable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bioner.utils.checkpoint import StreamedCheckpointIO


def test_writes_a_loadable_checkpoint_and_no_partial_file(tmp_path: Path) -> None:
    io = StreamedCheckpointIO()
    target = tmp_path / "checkpoints" / "best.ckpt"
    checkpoint = {"state_dict": {"w": torch.arange(6.0)}, "epoch": 3}
    io.save_checkpoint(checkpoint, target)
    loaded = io.load_checkpoint(target)
    assert loaded["epoch"] == 3 and torch.equal(loaded["state_dict"]["w"], torch.arange(6.0))
    assert sorted(p.name for p in target.parent.iterdir()) == ["best.ckpt"]


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    io = StreamedCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, target)

    class Unpicklable:
        def __reduce__(self):  # noqa: ANN204
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        io.save_checkpoint({"epoch": 2, "bad": Unpicklable()}, target)
    assert io.load_checkpoint(target, weights_only=False)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
