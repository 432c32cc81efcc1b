"""Run by ``test_attacks_ddp.py``: one optimiser step under 2-process CPU DDP with an attack.

Each rank saves its batches, the all-reduced gradients and how many gradient buckets DDP
all-reduced, so the test can check the gradients against a one-process computation. Lightning's
DDP launcher re-runs this script for rank 1, hence a script and not a function.

Usage: python ddp_attack_probe.py <tiny model dir> <iob folder> <out dir> <attack>
(none, pgd, freelb or vat; the state of torch's generator at each batch is saved for VAT's probe)
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

from bioner.attacks import PGD, VAT, FreeLB
from bioner.data.alignment import Alignment
from bioner.data.datamodule import NERDataModule
from bioner.data.readers import IOBReader
from bioner.models.encoders import HubEncoder
from bioner.models.module import TokenClassifier

ATTACKS = {
    "none": lambda: None,
    "pgd": lambda: PGD(epsilon=0.5, steps=3, norm="l2"),
    "freelb": lambda: FreeLB(epsilon=0.5, steps=3),
    "vat": lambda: VAT(epsilon=0.5, xi=0.1),
}


class Probe(L.Callback):
    """Counts all-reduced buckets and saves the first step's batches and gradients."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.allreduces = 0
        self.batches: list[dict] = []
        self.rng: list[torch.Tensor] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.save(pl_module.model.state_dict(), self.out / f"start{trainer.global_rank}.pt")

        def counting(state, bucket):  # noqa: ANN001, ANN202
            self.allreduces += 1
            return allreduce_hook(state, bucket)

        trainer.strategy.model.register_comm_hook(None, counting)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.batches.append({k: v.clone() for k, v in batch.items()})
        self.rng.append(torch.get_rng_state())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
        grads = {n: p.grad.clone() for n, p in pl_module.model.named_parameters()}
        torch.save(
            {
                "batches": self.batches,
                "rng": self.rng,
                "grads": grads,
                "allreduces": self.allreduces,
            },
            self.out / f"rank{trainer.global_rank}.pt",
        )


def main() -> None:
    model_dir, iob, out, attack = sys.argv[1:5]
    out = Path(out)
    torch.set_num_threads(1)
    encoder = HubEncoder(model_dir, name="tiny")
    reader = IOBReader(name="fixture", data_dir=Path(iob), entity_types=None)
    datamodule = NERDataModule(reader, Alignment(), encoder.load_tokenizer(), batch_size=1)
    L.seed_everything(5)
    module = TokenClassifier(encoder, datamodule.id2label, dropout=0.0)
    adversary = ATTACKS[attack]()
    callbacks = [Probe(out)] + ([adversary] if adversary is not None else [])
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        use_distributed_sampler=False,  # bioner's batch sampler shards by rank itself
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(module, datamodule=datamodule)


if __name__ == "__main__":
    main()
