"""Adversarial training in the word-embedding space: FGSM, FGM, PGD, FreeLB and VAT.

Each adversary is a Lightning callback (``conf/attack``) that registers itself with the
:class:`~bioner.models.module.TokenClassifier` in ``setup``; the module's ``training_step`` then
asks it for the loss. The training objective is ``clean + weight * adversarial``.

How the gradients are taken, and why:

* The clean pass is backpropagated *inside* ``training_step`` through :class:`Gradients`, which
  divides by ``accumulate_grad_batches`` and applies the fp16 loss scale exactly as Lightning does
  for the loss it backpropagates. That pass fills the parameter gradients of the clean loss and
  gives the gradient at the embeddings, the first ascent direction, at no extra cost.
* Ascent steps after the first take gradients with respect to the perturbation only
  (``torch.autograd.grad``): no parameter gradients are computed or accumulated.
* Only the last pass (``weight * adversarial``) is returned to Lightning, which backpropagates it.
  Under DDP the gradient all-reduce fires in that backward only: ``training_step`` runs inside
  DDP's forward, before DDP arms its reducer, so the backward passes taken there accumulate
  locally, as under ``no_sync``, and the single all-reduce averages their sum. One all-reduce per
  optimiser step, however many ascent steps.
* The perturbation is added to the output of the word-embedding table and never written into
  any weight; it is rebuilt from zero (or a random start) for every batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from torch import nn

from bioner.attacks.perturbation import (
    ascent_direction,
    check_norm,
    embedding_logits,
    embedding_loss,
    perturbable_mask,
    project,
    random_start,
    word_embeddings,
)
from bioner.data.document import Document
from bioner.errors import ConfigError
from bioner.inference.inputs import INPUT_FORMATS, read_inputs
from bioner.inference.tagger import make_document
from bioner.models.adversarial import Gradients, HeadLoss
from bioner.models.partial import token_loss

__all__ = ["Gradients"]  # defined with the module that takes it (bioner.models.adversarial)

LossAt = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class AdversarialLoss:
    """What an adversary hands back to ``training_step``.

    Attributes:
        loss: the part of the objective still to backpropagate (Lightning does it).
        objective: the value of the whole training objective (for logging).
        clean: the clean loss.
        adversarial: the loss under the final perturbation (FreeLB: mean over its passes).
        delta: the final perturbation (detached).
    """

    loss: torch.Tensor
    objective: torch.Tensor
    clean: torch.Tensor
    adversarial: torch.Tensor
    delta: torch.Tensor


def gradient_at(loss_at: LossAt, delta: torch.Tensor, gradients: Gradients) -> torch.Tensor:
    """d loss / d delta at ``delta``, with no parameter gradients."""
    delta = delta.detach().requires_grad_()
    (grad,) = torch.autograd.grad(gradients.scale(loss_at(delta)), delta)
    return grad


def special_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's special-token ids that stand for no word (``[UNK]`` stands for one)."""
    unk = tokenizer.unk_token_id
    return sorted(i for i in set(tokenizer.all_special_ids) if i != unk)


class Adversary(L.Callback):
    """Base of the embedding-space adversaries.

    Args:
        epsilon: radius of the per-token ball (see :mod:`bioner.attacks.perturbation`).
        weight: weight of the adversarial loss in ``clean + weight * adversarial``.
        warmup_epochs: train clean for this many epochs (fractions allowed) before attacking.
        ramp_epochs: after warm-up, grow epsilon linearly from 0 over this many epochs (0: at
            once).
        norm: ``linf`` or ``l2``.
        name: the label of runs and dashboards (``attack.name`` in the configs); by default the
            class name in lower case.
    """

    norm = "linf"

    def __init__(
        self,
        epsilon: float,
        weight: float = 1.0,
        warmup_epochs: float = 0.0,
        ramp_epochs: float = 0.0,
        name: str | None = None,
    ) -> None:
        if epsilon < 0 or weight < 0 or warmup_epochs < 0 or ramp_epochs < 0:
            raise ValueError(
                "epsilon, weight, warmup_epochs and ramp_epochs must be >= 0, not "
                f"{epsilon}, {weight}, {warmup_epochs}, {ramp_epochs}"
            )
        self.name = name or type(self).__name__.lower()
        self.epsilon = float(epsilon)
        self.weight = float(weight)
        self.warmup_epochs = float(warmup_epochs)
        self.ramp_epochs = float(ramp_epochs)
        self.current_epsilon = self.epsilon
        self.special_ids: list[int] = []
        # The module's head loss (TokenClassifier.head_loss), set in setup.
        self.head_loss: HeadLoss | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epsilon={self.epsilon}, weight={self.weight})"

    # ------------------------------------------------------------------ schedule

    def epsilon_at(self, epochs: float) -> float:
        """Epsilon after ``epochs`` epochs of training (fractional)."""
        if epochs < self.warmup_epochs:
            return 0.0
        if self.ramp_epochs == 0:
            return self.epsilon
        return self.epsilon * min(1.0, (epochs - self.warmup_epochs) / self.ramp_epochs)

    @property
    def active(self) -> bool:
        """Whether the current batch is attacked; at epsilon 0 training is exactly clean."""
        return self.current_epsilon > 0

    # ------------------------------------------------------------------ Lightning hooks

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not hasattr(pl_module, "adversary"):
            raise TypeError(
                f"attack={type(self).__name__.lower()} needs a module that asks its adversary for "
                f"the training loss (bioner.models.module.TokenClassifier), not "
                f"{type(pl_module).__name__}"
            )
        if not isinstance(trainer.strategy, (SingleDeviceStrategy, DDPStrategy)):
            raise ValueError(
                f"adversarial training supports single-device and DDP strategies, not "
                f"{type(trainer.strategy).__name__}: its extra backward passes bypass the strategy"
            )
        tokenizer = getattr(trainer.datamodule, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                "adversarial training needs the datamodule's tokenizer to keep special tokens "
                "unperturbed; use bioner.data.datamodule.NERDataModule"
            )
        self.special_ids = special_token_ids(tokenizer)
        self.head_loss = getattr(pl_module, "head_loss", None)
        pl_module.adversary = self

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if getattr(pl_module, "adversary", None) is self:
            pl_module.adversary = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        epochs = trainer.current_epoch + batch_idx / max(1, trainer.num_training_batches)
        self.current_epsilon = self.epsilon_at(epochs)
        pl_module.log("attack/epsilon", self.current_epsilon, batch_size=1)

    # ------------------------------------------------------------------ the attack

    def start(
        self, embeds: torch.Tensor, mask: torch.Tensor, epsilon: float
    ) -> torch.Tensor | None:
        """Where the ascent starts: ``None`` for zero (then the clean gradient is the first)."""
        return None

    def ascend(
        self,
        loss_at: LossAt,
        delta: torch.Tensor,
        grad: torch.Tensor,
        mask: torch.Tensor,
        epsilon: float,
        gradients: Gradients,
    ) -> torch.Tensor:
        """The perturbation, from ``delta`` whose loss gradient ``grad`` is known."""
        raise NotImplementedError

    def _mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return perturbable_mask(batch["input_ids"], batch["attention_mask"], self.special_ids)

    def attack(
        self,
        model: nn.Module,
        batch: dict[str, torch.Tensor],
        epsilon: float | None = None,
        special_ids: Sequence[int] | None = None,
        head_loss: HeadLoss | None = None,
    ) -> torch.Tensor:
        """A perturbation of ``batch``'s word embeddings that raises its loss (``head_loss``,
        else the encoder's cross-entropy) on ``batch["labels"]`` (robustness evaluation aims
        it at the gold labels).

        Computes no parameter gradients; ``model`` is used in whatever mode it is in.
        """
        epsilon = self.epsilon if epsilon is None else epsilon
        if special_ids is not None:
            self.special_ids = list(special_ids)
        mask = self._mask(batch)
        with torch.enable_grad():
            embeds = word_embeddings(model, batch["input_ids"]).detach()
            if epsilon == 0:
                return torch.zeros_like(embeds)

            def loss_at(delta: torch.Tensor) -> torch.Tensor:
                return embedding_loss(model, embeds + delta, batch, head_loss)

            gradients = Gradients()
            delta = self.start(embeds, mask, epsilon)
            if delta is None:
                delta = torch.zeros_like(embeds)
            grad = gradient_at(loss_at, delta, gradients)
            return self.ascend(loss_at, delta, grad, mask, epsilon, gradients).detach()

    def training_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], gradients: Gradients
    ) -> AdversarialLoss:
        """Backpropagate the clean loss locally and return the weighted adversarial loss."""
        epsilon = self.current_epsilon
        mask = self._mask(batch)
        embeds = word_embeddings(model, batch["input_ids"])
        if embeds.requires_grad:
            embeds.retain_grad()
        else:  # a frozen embedding table: the perturbation still needs its gradient
            embeds.requires_grad_()
        clean = embedding_loss(model, embeds, batch, self.head_loss)
        gradients.backward(clean)
        frozen = embeds.detach()

        def loss_at(delta: torch.Tensor) -> torch.Tensor:
            return embedding_loss(model, frozen + delta, batch, self.head_loss)

        delta = self.start(frozen, mask, epsilon)
        if delta is None:
            delta, grad = torch.zeros_like(frozen), embeds.grad
        else:
            grad = gradient_at(loss_at, delta, gradients)
        delta = self.ascend(loss_at, delta, grad, mask, epsilon, gradients).detach()
        # Fresh embeddings: the adversarial loss also trains the embedding table.
        adversarial = embedding_loss(
            model, word_embeddings(model, batch["input_ids"]) + delta, batch, self.head_loss
        )
        return AdversarialLoss(
            loss=self.weight * adversarial,
            objective=(clean + self.weight * adversarial).detach(),
            clean=clean.detach(),
            adversarial=adversarial.detach(),
            delta=delta,
        )


class FGSM(Adversary):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of ``epsilon * sign(grad)``,
    the corner of the L-inf ball of radius ``epsilon`` that the linearised loss prefers."""

    def ascend(self, loss_at, delta, grad, mask, epsilon, gradients):  # noqa: ANN001, D102
        return epsilon * ascent_direction(grad, "linf") * mask


class FGM(Adversary):
    """Fast gradient method (Miyato et al. 2017): one step of ``epsilon`` along the L2-normalised
    gradient (per token), the edge of the L2 ball the linearised loss prefers."""

    norm = "l2"

    def ascend(self, loss_at, delta, grad, mask, epsilon, gradients):  # noqa: ANN001, D102
        return epsilon * ascent_direction(grad, "l2") * mask


class PGD(Adversary):
    """Projected gradient descent (Madry et al. 2018): ``steps`` ascent steps of size ``alpha``,
    each projected back onto the ``norm`` ball of radius ``epsilon``.

    Args:
        epsilon: ball radius.
        alpha: step size (``None``: ``epsilon / steps * 2.5``, Madry et al.'s choice, capped at
            epsilon).
        steps: number of ascent steps (K); a training step costs about K + 1 clean steps at most.
        norm: ``linf`` or ``l2``.
        random_start: start at a random point of the ball instead of at zero (this costs one more
            forward and backward to the perturbation).
        weight, warmup_epochs, ramp_epochs, name: see :class:`Adversary`.
    """

    def __init__(
        self,
        epsilon: float,
        alpha: float | None = None,
        steps: int = 3,
        norm: str = "linf",
        random_start: bool = False,
        weight: float = 1.0,
        warmup_epochs: float = 0.0,
        ramp_epochs: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(epsilon, weight, warmup_epochs, ramp_epochs, name)
        if steps < 1:
            raise ValueError(f"steps must be at least 1, not {steps}")
        if alpha is not None and alpha <= 0:
            raise ValueError(f"alpha must be positive, not {alpha}")
        self.steps = int(steps)
        self.alpha = alpha
        self.norm = check_norm(norm)
        self.random_start = bool(random_start)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(epsilon={self.epsilon}, alpha={self.alpha}, "
            f"steps={self.steps}, norm={self.norm!r}, random_start={self.random_start}, "
            f"weight={self.weight})"
        )

    def step_size(self, epsilon: float) -> float:
        """Alpha at the current epsilon; a default alpha follows the epsilon schedule."""
        if self.alpha is not None:
            return self.alpha
        return min(epsilon, 2.5 * epsilon / self.steps)

    def start(self, embeds, mask, epsilon):  # noqa: ANN001, D102
        return random_start(embeds, mask, epsilon, self.norm) if self.random_start else None

    def step(
        self,
        delta: torch.Tensor,
        grad: torch.Tensor,
        alpha: float,
        epsilon: float,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """One ascent step of ``alpha`` along ``grad``, projected back onto the ball."""
        return project(delta + alpha * ascent_direction(grad, self.norm), epsilon, self.norm) * mask

    def ascend(self, loss_at, delta, grad, mask, epsilon, gradients):  # noqa: ANN001, D102
        alpha = self.step_size(epsilon)
        for step in range(self.steps):
            delta = self.step(delta, grad, alpha, epsilon, mask)
            if step + 1 < self.steps:
                grad = gradient_at(loss_at, delta, gradients)
        return delta


class FreeLB(PGD):
    """FreeLB (Zhu et al. 2020): K passes whose parameter gradients are averaged.

    Pass ``t`` trains on the perturbation reached after ``t`` ascent steps, and its backward
    pass gives both the parameter gradients and the next ascent direction, so K passes cost
    about K clean steps. Without a random start the first pass is the clean loss, and the
    objective is ``(clean + weight * sum of the K - 1 adversarial losses) / (1 + weight (K - 1))``:
    with ``weight=1`` the plain average of the paper. ``steps=1`` is clean training.
    Ascent steps use the L2-normalised gradient (``norm=l2``, as in the paper) by default.
    """

    def __init__(
        self,
        epsilon: float,
        alpha: float | None = None,
        steps: int = 3,
        norm: str = "l2",
        random_start: bool = False,
        weight: float = 1.0,
        warmup_epochs: float = 0.0,
        ramp_epochs: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(
            epsilon, alpha, steps, norm, random_start, weight, warmup_epochs, ramp_epochs, name
        )

    def training_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], gradients: Gradients
    ) -> AdversarialLoss:
        epsilon = self.current_epsilon
        alpha = self.step_size(epsilon)
        mask = self._mask(batch)
        total = 1.0 + self.weight * (self.steps - 1)
        delta = None
        losses: list[torch.Tensor] = []
        for step in range(self.steps):
            embeds = word_embeddings(model, batch["input_ids"])
            if delta is None:
                delta = self.start(embeds.detach(), mask, epsilon)
                if delta is None:
                    delta = torch.zeros_like(embeds)
            delta = delta.detach().requires_grad_()
            loss = embedding_loss(model, embeds + delta, batch, self.head_loss)
            losses.append(loss.detach())
            share = (1.0 if step == 0 else self.weight) / total
            if step + 1 == self.steps:
                break
            gradients.backward(share * loss)
            delta = self.step(delta, delta.grad, alpha, epsilon, mask)
        adversarial = torch.stack(losses[1:]).mean() if len(losses) > 1 else losses[0]
        objective = (losses[0] + self.weight * sum(losses[1:], torch.zeros(()))) / total
        return AdversarialLoss(
            loss=share * loss,
            objective=objective,
            clean=losses[0],
            adversarial=adversarial,
            delta=delta.detach(),
        )


def token_divergence(
    reference: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``KL(softmax(reference) || softmax(logits))`` per sub-word, averaged over the sub-words
    where ``mask`` (``(batch, tokens, 1)``) is 1; computed in fp32. Logits ``(batch, tokens,
    ..., tags)`` with more than one distribution per sub-word (the multi-label head's layers)
    have their divergences summed per sub-word, as that head's loss sums its layers'."""
    log_p = torch.log_softmax(reference.detach().float(), dim=-1)
    log_q = torch.log_softmax(logits.float(), dim=-1)
    per_token = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
    per_token = per_token.reshape(*per_token.shape[:2], -1).sum(dim=-1, keepdim=True)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def unlabeled_documents(path: Path, input_format: str, source: str) -> list[Document]:
    """The documents of a file or folder of raw text (``bioner-predict``'s input formats),
    segmented as the tagger segments raw text; ``source`` names the setting in errors.

    Raises:
        ConfigError: ``path`` does not exist or is standard input.
    """
    if str(path) == "-" or not path.exists():
        raise ConfigError(
            f"{source}: no such file or folder (relative paths are read from {Path.cwd()}); "
            "give a text file (one document per line), a folder of .txt files, or PubTator or "
            "PubMed XML files"
        )
    return [
        make_document(record.text, record.id, record.forced)
        for record in read_inputs(path, input_format)
    ]


class VAT(FGM):
    """Virtual adversarial training (Miyato et al. 2017, 2019; the smoothness term of SMART,
    Jiang et al. 2020): the perturbation that most changes the model's *own* predictions, and
    the divergence it causes.

    From a random direction of per-token L2 length ``xi``, ``steps`` power iterations follow the
    gradient of ``KL(clean predictions || perturbed predictions)`` (an estimate of the direction
    in which the predictions are least smooth); the perturbation is ``epsilon`` along it, per
    token. The adversarial loss is that KL, per sub-word, averaged over the perturbable sub-words:
    the objective is ``clean cross-entropy + weight * KL``. It reads no label, so it smooths the
    model where the gold says ``O`` or nothing (context sub-words) as well. A step costs about
    ``steps + 2`` clean forward and backward passes.

    The divergence is of each sub-word's softmax over the outputs: the tag distribution of the
    ``flat`` head, the emission scores of the ``crf`` head; for the ``multilabel`` head, the sum
    over its layers of each layer's (``TokenClassifier.head_distributions``).

    Aimed at gold labels (robustness evaluation, :meth:`Adversary.attack`) it is :class:`FGM`,
    whose step it inherits: ``epsilon`` along the L2-normalised gradient of the loss.

    Semi-supervised (``unlabeled``): since the divergence needs no label, text without
    annotations (abstracts of the corpus's domain) joins every training batch, ``unlabeled_ratio``
    sequences per labelled one (:meth:`bioner.data.datamodule.NERDataModule.add_unlabeled`).
    Their rows carry no label, so the cross-entropy is that of the labelled rows alone, and the
    divergence is averaged over the sub-words of both.

    Args:
        epsilon: per-token L2 radius of the perturbation.
        xi: per-token L2 length of the probe of the power iteration (a finite difference: too
            small vanishes in bf16, too large leaves the neighbourhood).
        steps: power iterations (1, as in the papers, is usually enough).
        weight, warmup_epochs, ramp_epochs, name: see :class:`Adversary`.
        unlabeled: a file or folder of unannotated text, read as ``bioner-predict`` reads its
            input (:func:`bioner.inference.inputs.read_inputs`: one document per line, a folder
            of ``.txt`` files, JSON lines, PubTator, PubMed XML), split into sentences and words
            as the tagger splits raw text. ``None``: labelled text only.
        unlabeled_format: its format, as ``bioner-predict``'s ``input_format`` (``auto``: by
            its name and first line).
        unlabeled_ratio: unlabelled sequences per labelled one in each training batch.
    """

    def __init__(
        self,
        epsilon: float,
        xi: float = 1e-2,
        steps: int = 1,
        weight: float = 1.0,
        warmup_epochs: float = 0.0,
        ramp_epochs: float = 0.0,
        name: str | None = None,
        unlabeled: str | Path | None = None,
        unlabeled_format: str = "auto",
        unlabeled_ratio: float = 1.0,
    ) -> None:
        super().__init__(epsilon, weight, warmup_epochs, ramp_epochs, name)
        if not xi > 0:
            raise ValueError(f"xi must be positive, not {xi}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, not {steps}")
        if unlabeled_format not in INPUT_FORMATS:
            raise ValueError(
                f"unlabeled_format must be one of {', '.join(INPUT_FORMATS)}, not "
                f"{unlabeled_format!r}"
            )
        if not unlabeled_ratio > 0:
            raise ValueError(f"unlabeled_ratio must be positive, not {unlabeled_ratio}")
        self.xi = float(xi)
        self.steps = int(steps)
        self.unlabeled = None if unlabeled is None else Path(unlabeled)
        self.unlabeled_format = unlabeled_format
        self.unlabeled_ratio = float(unlabeled_ratio)
        # The head's distributions of the logits (set in setup; None: the logits are one).
        self.distributions: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __repr__(self) -> str:
        text = (
            f"{type(self).__name__}(epsilon={self.epsilon}, xi={self.xi}, steps={self.steps}, "
            f"weight={self.weight}"
        )
        if self.unlabeled is not None:
            text += f", unlabeled={str(self.unlabeled)!r}, unlabeled_ratio={self.unlabeled_ratio}"
        return text + ")"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.distributions = getattr(pl_module, "head_distributions", None)
        if stage == "fit" and self.unlabeled is not None:
            datamodule = trainer.datamodule
            if not hasattr(datamodule, "add_unlabeled"):
                raise ConfigError(
                    f"attack.unlabeled needs bioner's NERDataModule, not "
                    f"{type(datamodule).__name__}; set attack.unlabeled=null"
                )
            source = f"attack.unlabeled={self.unlabeled}"
            docs = unlabeled_documents(self.unlabeled, self.unlabeled_format, source)
            datamodule.add_unlabeled(docs, self.unlabeled_ratio, source)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        # Also after a setup that failed (no such datamodule, no such file).
        if (
            stage == "fit"
            and self.unlabeled is not None
            and hasattr(trainer.datamodule, "unlabeled")
        ):
            trainer.datamodule.unlabeled = None

    def training_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], gradients: Gradients
    ) -> AdversarialLoss:
        epsilon = self.current_epsilon
        mask = self._mask(batch)
        embeds = word_embeddings(model, batch["input_ids"])
        logits = embedding_logits(model, embeds, batch)
        clean = (self.head_loss or token_loss)(logits, batch)
        gradients.backward(clean)
        heads = self.distributions or (lambda out: out)
        reference = heads(logits.detach())
        frozen = embeds.detach()
        probe = ascent_direction(torch.randn_like(frozen), "l2") * mask
        for _ in range(self.steps):
            probe = (self.xi * probe).requires_grad_()
            probed = heads(embedding_logits(model, frozen + probe, batch))
            divergence = token_divergence(reference, probed, mask)
            (grad,) = torch.autograd.grad(gradients.scale(divergence), probe)
            probe = ascent_direction(grad, "l2") * mask
        delta = epsilon * probe
        # Fresh embeddings: the divergence also trains the embedding table.
        fresh = word_embeddings(model, batch["input_ids"])
        perturbed = heads(embedding_logits(model, fresh + delta, batch))
        adversarial = token_divergence(reference, perturbed, mask)
        return AdversarialLoss(
            loss=self.weight * adversarial,
            objective=(clean + self.weight * adversarial).detach(),
            clean=clean.detach(),
            adversarial=adversarial.detach(),
            delta=delta.detach(),
        )
