"""Lightning callbacks that belong to no model in particular."""

from __future__ import annotations

import random
import time
from typing import Any

import lightning as L
import numpy as np
import torch

from bioner.utils.log import get_logger

log = get_logger(__name__)


class ReseedEachBatch(L.Callback):
    """Seed Python, NumPy and torch before each training batch from ``(seed, epoch, batch, rank)``.

    Lightning's checkpoints do not carry RNG states, so a resumed run would otherwise draw
    different dropout masks from an uninterrupted one. Seeding each batch from where it stands in
    training makes its randomness independent of what ran before, so ``ckpt_path=last`` continues
    a killed run exactly. (Per batch rather than per epoch: a run resumed at an epoch end starts
    its next epoch without ``on_train_epoch_start``.)

    Args:
        seed: the run's seed.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        key = [self.seed, trainer.current_epoch, batch_idx, trainer.global_rank]
        batch_seed = int(np.random.SeedSequence(key).generate_state(1)[0])
        random.seed(batch_seed)
        np.random.seed(batch_seed)
        if pl_module.device.type == "cpu":
            # The CPU generator is all a CPU run draws from. torch.manual_seed would also queue
            # a seeding of CUDA, not initialised here, with a formatted stack trace: 0.6 ms per
            # batch from inside Lightning's loop.
            torch.default_generator.manual_seed(batch_seed)
        else:
            torch.manual_seed(batch_seed)


class ConfigInCheckpoint(L.Callback):
    """Store the run's resolved config in every checkpoint under ``"bioner_config"``.

    ``bioner-eval`` rebuilds the encoder and alignment from it, so a checkpoint is usable on its
    own, even when moved out of its run folder.

    Args:
        config: the resolved config as plain containers.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["bioner_config"] = self.config


class Throughput(L.Callback):
    """Log training throughput in sequences (windows) per second as ``train/sequences_per_s``.

    Wall time of each training epoch, data loading included and validation excluded, so the
    figure is the one that decides how long training takes. ``history`` holds one rate per
    finished epoch and travels in checkpoints, so a run resumed with ``ckpt_path=last`` reports
    every epoch's speed, not only those of its last attempt.
    """

    def __init__(self) -> None:
        self.history: list[float] = []
        self._start: float | None = None
        self._paused = 0.0
        self._val_start: float | None = None
        self._sequences = 0
        self._epoch_complete = False

    def _rate(self) -> float | None:
        """Sequences per second of the current epoch so far (validation excluded)."""
        if self._start is None or not self._sequences:
            return None
        now = time.perf_counter()
        validating = now - self._val_start if self._val_start is not None else 0.0
        seconds = now - self._start - self._paused - validating
        return self._sequences / seconds if seconds > 0 else None

    def state_dict(self) -> dict[str, Any]:
        """The finished epochs' rates. The checkpoint that ends an epoch is written after its
        closing validation but before ``on_train_epoch_end``, so an epoch whose batches are all
        done counts as finished: a run killed right after that checkpoint resumes past it."""
        history = list(self.history)
        rate = self._rate() if self._epoch_complete else None
        if rate is not None:
            history.append(rate)
        return {"history": history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [float(rate) for rate in state_dict.get("history", [])]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._paused, self._sequences = time.perf_counter(), 0.0, 0
        self._epoch_complete = False

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._sequences += int(batch["input_ids"].shape[0])
        self._epoch_complete = batch_idx + 1 >= trainer.num_training_batches

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._val_start is not None and self._start is not None:
            self._paused += time.perf_counter() - self._val_start
        self._val_start = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rate = self._rate()
        if rate is not None:
            self.history.append(rate)
            pl_module.log("train/sequences_per_s", rate, sync_dist=True)
            log.info("epoch %d: %.1f training sequences/s", trainer.current_epoch, rate)
        self._start = None
