"""What the training step asks of an adversary, defined where it is asked.

An attack callback (:mod:`bioner.attacks`) registers itself as ``TokenClassifier.adversary`` in its
``setup``; ``training_step`` then hands it the model, the batch and a :class:`Gradients`, and logs
and returns the :class:`TrainingAdversary`'s loss. The module knows only this protocol, so the
models layer does not import the attacks built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

# A head's loss from its logits and the batch (labels, and "unannotated" where corpora annotate
# different types): TokenClassifier.head_loss.
HeadLoss = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]


@dataclass
class Gradients:
    """How an adversary's own backward passes must be taken to match the trainer's.

    Args:
        accumulate: ``accumulate_grad_batches``: every loss is divided by it.
        scaler: the fp16 ``GradScaler`` (``16-mixed``), or ``None``.
    """

    accumulate: int = 1
    scaler: Any = None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` times the loss scale (fp16 gradients underflow without it)."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the parameter gradients of ``loss`` as the trainer would."""
        self.scale(loss / self.accumulate).backward()


class AdversarialStep(Protocol):
    """What an adversary's ``training_loss`` returns (:class:`bioner.attacks.AdversarialLoss`)."""

    loss: torch.Tensor  # what Lightning still backpropagates
    objective: torch.Tensor
    clean: torch.Tensor
    adversarial: torch.Tensor


class TrainingAdversary(Protocol):
    """An adversary as ``training_step`` uses it (:class:`bioner.attacks.Adversary`)."""

    @property
    def active(self) -> bool:
        """Whether it attacks this step (its epsilon may still be 0)."""
        ...

    def training_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], gradients: Gradients
    ) -> AdversarialStep:
        """The adversarial training loss of ``batch``."""
        ...
