"""The LightningModule: a Hugging Face token classifier, its optimiser, and span-level scoring.

Validation and test collect the logits of every feature, gather them across DDP ranks, let the
evaluation dataset decode them to character spans (its alignment encoded the features) and score
the spans with :func:`bioner.evaluation.evaluate`. Metrics are logged as ``val/<name>`` and
``test/<name>`` (``val/f1`` is what checkpointing and early stopping watch); they score the
decoded spans as they are (post-processing, :meth:`StageResult.postprocessed`, happens after the
final passes, in :func:`bioner.runtime.finish.finish_evaluation`). Nothing here knows about corpus
files or output formats.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from torch import nn

from bioner.data.alignment import HEADS, Transitions, layer_columns
from bioner.data.document import Document, Span, by_corpus
from bioner.errors import ConfigError
from bioner.evaluation import SpanEvaluation, evaluate
from bioner.evaluation.label_sets import LabelSets
from bioner.evaluation.metrics import count_columns
from bioner.models.adversarial import Gradients, HeadLoss, TrainingAdversary
from bioner.models.crf import CRF
from bioner.models.dropout import FastCPUDropout
from bioner.models.encoders import Encoder, checkpointing_enabled
from bioner.models.partial import token_loss
from bioner.postprocess.base import PostProcessor, apply_steps
from bioner.utils.log import get_logger

log = get_logger(__name__)


class DecodableDataset(Protocol):
    """What evaluation needs from a dataloader's dataset (see ``EncodedSplit``)."""

    split: str

    def decode(
        self,
        logits: Mapping[int, np.ndarray],
        id2label: Mapping[int, str],
        transitions: Transitions | None = None,
    ) -> tuple[list[Document], list[list[Span]]]: ...


@dataclass
class StageResult:
    """The scored predictions of one evaluation pass.

    Attributes:
        split: the evaluated split (``devel``, ``test``).
        docs: the gold documents that were scored.
        predictions: ``predictions[i]`` are the predicted spans of ``docs[i]``, each with the
            model's confidence as its ``score``.
        evaluation: the span evaluation of those predictions.
    """

    split: str
    docs: list[Document]
    predictions: list[list[Span]]
    evaluation: SpanEvaluation

    def postprocessed(self, steps: Sequence[PostProcessor]) -> StageResult:
        """The result of running ``steps`` over each document's spans, scored anew.

        Steps see the same spans over the document's text as :class:`bioner.inference.Tagger`
        hands them, so a ``postprocess`` config scores here as it tags there. Spans are scored
        by offsets and type (identifiers from dictionary normalisation do not count).

        Raises:
            ValueError: a prediction has no score (steps such as overlap resolution need one).
        """
        if any(s.score is None for spans in self.predictions for s in spans):
            raise ValueError(
                f"{self.split}: post-processing needs each span's score; decode the predictions "
                "with Alignment.decode (TokenClassifier does)"
            )
        predictions = [
            apply_steps(steps, doc.text, spans) for doc, spans in zip(self.docs, self.predictions)
        ]
        evaluation = evaluate(self.docs, predictions)
        return StageResult(self.split, self.docs, predictions, evaluation)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: no weight decay on biases and normalisation weights.

    Decaying LayerNorm gains pulls them towards zero, which hurts; the exclusion follows BERT's
    original recipe and the transformers Trainer.
    """
    norm_params = {
        id(p)
        for module in model.modules()
        if isinstance(module, (nn.LayerNorm, nn.GroupNorm))
        or "norm" in type(module).__name__.lower()
        for p in module.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith("bias") or id(param) in norm_params:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        # Named so that LearningRateMonitor logs lr/weights and lr/biases_norms, not pg1/pg2.
        {"params": decay, "weight_decay": weight_decay, "name": "weights"},
        {"params": no_decay, "weight_decay": 0.0, "name": "biases_norms"},
    ]


# A numbered block of the encoder in a parameter's name: BERT's ``encoder.layer.3.``, GPT-2's
# ``h.3.``, ``layers.3.`` and ``blocks.3.`` elsewhere.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)(?:\.|$)")
# Embedding tables and their norm, outside the numbered blocks (``embeddings.LayerNorm``,
# DeBERTa's ``rel_embeddings``, ``embed_tokens``, GPT-2's ``wte``/``wpe``).
_EMBEDDINGS = re.compile(r"(?:^|\.)(?:\w*embeddings?|embed_tokens|wte|wpe)(?:\.|$)")


def layer_depths(model: nn.Module) -> tuple[dict[str, int], int]:
    """The depth of each named parameter of ``model``, and its number of layers ``L``.

    Depth 0 is the embeddings, ``i + 1`` the encoder's ``i``-th layer (numbered in the name:
    ``encoder.layer.<i>.``), and ``L + 1`` everything above them: the classifier, a pooler, a
    final norm.

    Raises:
        ConfigError: no parameter name holds a layer number, so no depth can be told.
    """
    names = [name for name, _ in model.named_parameters()]
    numbered = {name: int(m.group(1)) for name in names if (m := _LAYER.search(name))}
    if not numbered:
        raise ConfigError(
            f"module.layer_lr_decay: the encoder's parameter names (e.g. {names[0]!r}) hold no "
            "numbered layers (encoder.layer.<i>. or layers.<i>.), so they have no depth; leave "
            "module.layer_lr_decay=1.0 for this encoder"
        )
    layers = max(numbered.values()) + 1
    depths = {}
    for name in names:
        if name in numbered:
            depths[name] = numbered[name] + 1
        else:
            depths[name] = 0 if _EMBEDDINGS.search(name) else layers + 1
    return depths, layers


def layer_decay_groups(
    model: nn.Module, groups: list[dict[str, Any]], lr: float, layer_decay: float
) -> list[dict[str, Any]]:
    """Layer-wise learning-rate decay: ``groups`` (of :func:`decay_groups`) split by depth
    (:func:`layer_depths`), each at ``lr * layer_decay ** (L + 1 - depth)``.

    The classifier learns at ``lr``, the top layer at ``lr * layer_decay``, and the embeddings at
    ``lr * layer_decay ** (L + 1)``: the layers nearest the input, the most general ones, move
    least (ELECTRA, Clark et al. 2020; Sun et al. 2019). ``layer_decay=1`` returns ``groups`` as
    they are. A group is named ``<part>/<group>``: ``embeddings/weights``, ``layer_03/weights``,
    ``head/biases_norms``.
    """
    if layer_decay == 1.0:
        return groups
    depths, layers = layer_depths(model)
    depth_of = {id(param): depths[name] for name, param in model.named_parameters()}
    width = len(str(layers - 1))
    parts = ["embeddings", *(f"layer_{i:0{width}d}" for i in range(layers)), "head"]
    split = []
    for depth, part in enumerate(parts):
        for group in groups:
            params = [p for p in group["params"] if depth_of[id(p)] == depth]
            if params:
                scale = layer_decay ** (layers + 1 - depth)
                name = f"{part}/{group['name']}"
                split.append({**group, "params": params, "lr": lr * scale, "name": name})
    return split


class LinearWarmupDecay:
    """LR multiplier: 0 -> 1 linearly over ``warmup_steps``, then 1 -> 0 at ``total_steps``.

    An object rather than a closure: ``LambdaLR`` checkpoints its attributes, and
    :meth:`FineTuning.on_train_epoch_start` moves ``total_steps`` when an epoch's length changes.
    """

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))


def merge_logits(parts: Iterable[Mapping[int, np.ndarray] | None]) -> dict[int, np.ndarray]:
    """One logits array per feature index from the parts of several ranks.

    A feature computed on two ranks (the sampler repeats a few batches so that ranks stay in
    step) is kept once, so nothing is scored twice.
    """
    merged: dict[int, np.ndarray] = {}
    for part in parts:
        for index, logits in (part or {}).items():
            merged.setdefault(index, logits)
    return merged


def gather_logits(local: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The logits of every DDP rank, merged by :func:`merge_logits` (``local`` without DDP)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return local
    parts: list[dict[int, np.ndarray] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, local)
    return merge_logits(parts)


class FineTuning(L.LightningModule):
    """AdamW (no decay on biases and norms) with linear warm-up and decay, and gradient clipping
    that works with fused AdamW under bf16: shared by the tagger and the MLM of
    ``bioner-pretrain``. Reads ``lr``, ``weight_decay``, ``warmup_ratio``, ``adam_epsilon``,
    ``fused_optimizer`` and ``fast_dropout`` from ``self.hparams`` and optimises ``self.model``;
    training steps run their forward passes inside :meth:`training_dropout`."""

    @staticmethod
    def check_optimisation(
        lr: float, weight_decay: float, warmup_ratio: float, adam_epsilon: float
    ) -> None:
        """Refuse optimisation settings that the optimiser or scheduler would reject only once
        training starts (or accept and train wrongly), naming the ``module.`` key and its range.

        Raises:
            ConfigError: ``lr`` or ``adam_epsilon`` not positive, ``weight_decay`` negative, or
                ``warmup_ratio`` outside [0, 1].
        """
        checks = [
            ("lr", lr, lr > 0, "a positive number (e.g. 5e-5)"),
            ("weight_decay", weight_decay, weight_decay >= 0, "0 or more (e.g. 0.01)"),
            ("warmup_ratio", warmup_ratio, 0 <= warmup_ratio <= 1, "in [0, 1] (e.g. 0.1)"),
            ("adam_epsilon", adam_epsilon, adam_epsilon > 0, "a positive number (e.g. 1e-8)"),
        ]
        for key, value, ok, wanted in checks:
            if not ok:
                raise ConfigError(f"module.{key}={value}: must be {wanted}")

    def training_dropout(self) -> contextlib.AbstractContextManager:
        """Where the training forward passes run: :class:`~bioner.models.dropout.FastCPUDropout`
        when ``fast_dropout`` is true (``None``: when the module is on the CPU), else as is.

        Never with gradient checkpointing: its recomputation runs in the backward pass, outside
        this context, and must draw the very masks of the forward pass.
        """
        if checkpointing_enabled(self.model):
            return contextlib.nullcontext()
        fast = self.hparams.get("fast_dropout")
        if fast is None:
            fast = self.device.type == "cpu"
        return FastCPUDropout() if fast else contextlib.nullcontext()

    def log_training_step(self, metrics: dict[str, torch.Tensor], batch_size: int) -> None:
        """Log a training step's ``metrics`` (the first also on the progress bar) on the steps
        whose metrics Lightning passes to the loggers (every ``trainer.log_every_n_steps``).

        The loggers receive the same values as when every step logs: Lightning keeps only the
        last value of an ``on_step`` metric and writes it on those steps. Each ``self.log`` costs
        about 0.6 ms of host time (Lightning's result bookkeeping, on a 2-core CPU). The values
        are logged as host copies: the progress bar reads them at every step, which for a GPU
        tensor would make the host wait for the GPU at every step; it shows the loss of the last
        logged step.
        """
        trainer = self._trainer
        # Lightning's own test (private: where it is missing, every step logs, as before).
        connector = getattr(trainer, "_logger_connector", None)
        if trainer is not None and not (
            getattr(connector, "should_update_logs", True) or trainer.fast_dev_run
        ):
            return
        for i, (name, value) in enumerate(metrics.items()):
            self.log(name, value.detach().cpu(), prog_bar=i == 0, batch_size=batch_size)

    def _loss_scaler(self) -> Any:
        return getattr(self.trainer.precision_plugin, "scaler", None)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        # Lightning's mixed-precision plugin refuses to clip for fused optimizers even under bf16,
        # where no loss scaler exists and gradients are already unscaled: clip them directly.
        if gradient_clip_val and self._loss_scaler() is None and gradient_clip_algorithm != "value":
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_train_epoch_start(self) -> None:
        # Augmentation rebuilds the training loader every epoch, and augmented texts make other
        # numbers of batches, so the step count planned from the first epoch drifts. Re-plan the
        # end from this epoch's length (exact in the last epoch): the decay ends at 0 on the last
        # step actually taken.
        trainer = self.trainer
        batches = trainer.num_training_batches
        if trainer.max_epochs is None or trainer.max_epochs < 0 or not np.isfinite(batches):
            return
        for config in trainer.lr_scheduler_configs:
            for schedule in getattr(config.scheduler, "lr_lambdas", []):
                if isinstance(schedule, LinearWarmupDecay):
                    per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
                    total = trainer.global_step + per_epoch * (
                        trainer.max_epochs - trainer.current_epoch
                    )
                    if trainer.max_steps != -1:
                        total = min(total, trainer.max_steps)
                    schedule.total_steps = total

    def parameter_groups(self) -> list[dict[str, Any]]:
        """AdamW's parameter groups: :func:`decay_groups` of ``self.model``, split by depth
        (:func:`layer_decay_groups`) where ``layer_lr_decay`` is below 1."""
        hp = self.hparams
        groups = decay_groups(self.model, hp.weight_decay)
        return layer_decay_groups(self.model, groups, hp.lr, hp.get("layer_lr_decay", 1.0))

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = self.parameter_groups()
        fused = hp.fused_optimizer
        if fused is None:
            # Lightning cannot clip gradients of a fused optimizer under a loss scaler (16-mixed).
            fused = self._loss_scaler() is None and all(
                p.device.type in ("cpu", "cuda") for g in groups for p in g["params"]
            )
        layer_decay = hp.get("layer_lr_decay", 1.0)
        if layer_decay != 1.0:
            lowest = min(groups, key=lambda group: group["lr"])
            log.info(
                "Layer-wise learning-rate decay %s: peak rates from %.3g (%s) up to %.3g (head)",
                layer_decay,
                lowest["lr"],
                lowest["name"].split("/")[0],
                hp.lr,
            )
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, eps=hp.adam_epsilon, fused=fused)
        total = self.trainer.estimated_stepping_batches
        if not np.isfinite(total):
            raise ConfigError(
                "the learning-rate schedule needs a finite number of steps: set trainer.max_epochs "
                "or trainer.max_steps"
            )
        total = int(total)
        warmup = round(total * hp.warmup_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LinearWarmupDecay(warmup, total))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"},
        }


def layer_logits(logits: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """The multi-label head's ``(batch, length, outputs)`` logits as one distribution's logits
    per layer, ``(batch, length, layers, tags)``: ``O``'s logit (fixed at 0) first, then the
    outputs ``layers`` (``(layers, tags - 1)``) gives each layer."""
    picked = logits[..., layers]  # (batch, length, layers, tags - 1)
    # O's logit is fixed at 0: softmax is shift-invariant, so each layer loses nothing by it.
    return torch.cat([picked.new_zeros(*picked.shape[:-1], 1), picked], dim=-1)


def multilabel_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    layers: torch.Tensor,
    unannotated: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of the multi-label head: summed over layers, averaged over the labelled
    sub-words.

    Summing over layers gives each layer the weight a flat head gives its one tag: a mean over
    layers would shrink every type's gradient by the number of types (21 for MedMentions).

    Args:
        logits: ``(batch, length, num_labels)`` model outputs.
        labels: ``(batch, length, layers)`` label ids in each layer's tags, ``-100`` ignored
            (the same sub-words in every layer).
        layers: ``(layers, tags - 1)`` the outputs of each layer's tags but ``O``.
        unannotated: ``(batch, outputs)`` booleans, the tags of types a sequence's corpus does
            not annotate (``dataset=multi``): the layers of those types are left out of its
            loss (any tag is allowed there), and the average stays over its labelled sub-words.
    """
    count = (labels[..., 0] != -100).sum().clamp(min=1)
    if unannotated is not None:
        skip = unannotated[:, layers[:, 0]]  # (batch, layers)
        labels = labels.masked_fill(skip.unsqueeze(1), -100)
    full = layer_logits(logits, layers)
    total = nn.functional.cross_entropy(
        full.reshape(-1, full.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )
    return total / count


# Each member corpus's own scores among a split's logged metrics (dataset=multi).
CORPUS_METRICS = ("precision", "recall", "f1")


def scoring_metric_names(
    stage: str, entity_types: Sequence[str], corpora: Sequence[str] = ()
) -> list[str]:
    """The names :class:`TokenClassifier` logs when it scores ``stage`` (``val``, ``test``):
    ``<stage>/loss``, every key of :meth:`SpanEvaluation.metrics` (the per-type ones of
    ``entity_types``) and, with several corpora, ``<stage>/<corpus>/{precision,recall,f1}``.

    A per-type name is logged once that type has a gold or predicted span in the split.
    """
    columns = count_columns(entity_types)
    empty = SpanEvaluation([], list(entity_types), columns, np.zeros((0, len(columns))))
    names = [f"{stage}/loss", *(f"{stage}/{k}" for k in empty.metrics())]
    return names + [f"{stage}/{key}/{k}" for key in corpora for k in CORPUS_METRICS]


class TokenClassifier(FineTuning):
    """A token classifier on a pretrained encoder, trained with AdamW and a linear schedule.

    Args:
        encoder: the :class:`~bioner.models.encoders.Encoder` (``conf/model``) that builds the
            ``AutoModelForTokenClassification``.
        id2label: tag of each output id (from the datamodule: alignment labels over the
            dataset's entity types).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup_ratio: share of the training steps spent warming the learning rate up from 0;
            it then decays linearly to 0 at the last step.
        adam_epsilon: AdamW's epsilon.
        dropout: replaces every dropout probability of the encoder; ``None`` keeps its own.
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        fused_optimizer: use the fused AdamW kernel (``None``: when every parameter lives on a
            CPU or CUDA device); it is several times faster than the per-tensor loop on CPU.
        fast_dropout: draw training dropout masks with :mod:`bioner.models.dropout` (``None``:
            on the CPU, where PyTorch's own draw takes about a tenth of a MiniLM step); never
            with gradient checkpointing.
        head: ``flat``, one tag per word (the token cross-entropy), or ``multilabel``,
            one tag layer per entity type, which can predict nested entities: the loss is the
            cross-entropy summed over the layers (:func:`bioner.data.alignment.layer_columns`)
            and averaged over the labelled sub-words (:func:`multilabel_loss`). The alignment
            must use the same head (the configs interpolate ``alignment.head: ${module.head}``).
            ``crf``: one tag per word with a linear-chain CRF over the words of a unit
            (:class:`~bioner.models.crf.CRF`): the loss is its negative log-likelihood and
            decoding its best allowed tag sequence (:mod:`bioner.data.alignment.crf`).
        crf_lr_multiplier: the ``crf`` head's transition scores learn at ``lr`` times this
            (they start at 0 and are few; at the encoder's rate they would barely move), with
            no weight decay and the same schedule.
        layer_lr_decay: layer-wise learning-rate decay, in (0, 1]: the classifier learns at
            ``lr``, each encoder layer below it at this times the rate of the layer above, and
            the embeddings at ``lr * layer_lr_decay ** (layers + 1)``
            (:func:`layer_decay_groups`). 1 (the default): one rate for all.

    Attributes:
        results: ``"val"`` / ``"test"`` -> the :class:`StageResult` of the last pass.
    """

    def __init__(
        self,
        encoder: Encoder,
        id2label: Mapping[int, str],
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        adam_epsilon: float = 1e-8,
        dropout: float | None = None,
        gradient_checkpointing: bool = False,
        fused_optimizer: bool | None = None,
        fast_dropout: bool | None = None,
        head: str = "flat",
        crf_lr_multiplier: float = 100.0,
        layer_lr_decay: float = 1.0,
    ) -> None:
        super().__init__()
        self.check_optimisation(lr, weight_decay, warmup_ratio, adam_epsilon)
        if dropout is not None and not 0 <= dropout < 1:
            raise ConfigError(
                f"module.dropout={dropout}: must be in [0, 1) (e.g. 0.1; null keeps "
                "the encoder's own)"
            )
        if head not in HEADS:
            raise ConfigError(f"module.head={head!r}: choose one of {', '.join(HEADS)}")
        if not crf_lr_multiplier > 0:
            raise ConfigError(
                f"module.crf_lr_multiplier={crf_lr_multiplier}: must be a positive number "
                "(e.g. 100)"
            )
        if not 0 < layer_lr_decay <= 1:
            raise ConfigError(
                f"module.layer_lr_decay={layer_lr_decay}: must be in (0, 1] (e.g. 0.9; 1 gives "
                "every layer the same rate)"
            )
        # Plain types before saving: Hydra passes mappings as DictConfig, which checkpoints loaded
        # with torch.load(weights_only=True) cannot hold.
        id2label = {int(k): str(v) for k, v in id2label.items()}
        self.save_hyperparameters(ignore=["encoder"], logger=False)
        self.id2label = id2label
        self.head = head
        self._layers: torch.Tensor | None = None
        self.crf: CRF | None = None
        # The loss of the head from (logits, batch); every head reads partial annotation
        # (batch["unannotated"], dataset=multi): bioner.models.partial.
        self.head_loss: HeadLoss = token_loss
        if head == "multilabel":
            # (layers, tags per layer - 1): the outputs each layer reads beside its fixed O logit.
            columns = [cols for _, cols in layer_columns(id2label)]
            self._layers = torch.tensor(columns, dtype=torch.long)
            self.head_loss = self._multilabel_loss
        elif head == "crf":
            self.crf = CRF([id2label[i] for i in range(len(id2label))])
            self.head_loss = self._crf_loss
        self.model = encoder.load_model(
            self.id2label, dropout=dropout, gradient_checkpointing=gradient_checkpointing
        )
        if layer_lr_decay != 1.0:
            layer_depths(self.model)  # an encoder without numbered layers is refused now
        # from_pretrained returns the model in eval mode and Lightning keeps submodule modes as
        # they are, so training would run without dropout.
        self.model.train()
        # Lightning's model summary runs this through `forward` to count FLOPs: its "Total FLOPs"
        # is then one forward pass over one sequence of 128 sub-words, or of the encoder's limit
        # where that is shorter (without an example it printed 0).
        length = min(128, encoder.max_length)
        self.example_input_array = {
            "input_ids": torch.zeros(1, length, dtype=torch.long),
            "attention_mask": torch.ones(1, length, dtype=torch.long),
        }
        self.results: dict[str, StageResult] = {}
        self._logits: dict[int, np.ndarray] = {}
        # Set by an attack callback (bioner.attacks) in its setup; None trains on clean data.
        self.adversary: TrainingAdversary | None = None
        # Set by bioner-eval when the corpus's types are not the model's: scores cover the
        # shared types, and `set_aside[stage]` counts what was left out (LabelSets.restrict).
        self.label_sets: LabelSets | None = None
        self.set_aside: dict[str, dict[str, Any]] = {}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if "labels" not in batch:
            raise ValueError("training batches need labels; the training documents have none")
        size = batch["input_ids"].shape[0]
        if self.adversary is not None and self.adversary.active:
            gradients = Gradients(self.trainer.accumulate_grad_batches, self._loss_scaler())
            with self.training_dropout():
                adv = self.adversary.training_loss(self.model, batch, gradients)
            metrics = {
                "train/loss": adv.objective,
                "train/loss_clean": adv.clean,
                "train/loss_adversarial": adv.adversarial,
            }
            self.log_training_step(metrics, size)
            return adv.loss
        with self.training_dropout():
            logits, loss = self._forward(batch)
        self.log_training_step({"train/loss": loss}, size)
        return loss

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's logits, ``(batch, sub-words, outputs)``."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def _forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and, with labels, the loss of the configured head."""
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if "labels" not in batch:
            return out.logits, None
        return out.logits, self.head_loss(out.logits, batch)

    def head_distributions(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits of the head's distributions of each sub-word, ``(..., tags)``: the
        encoder's for the ``flat`` and ``crf`` heads (one distribution), one per layer for the
        ``multilabel`` head (:func:`layer_logits`). VAT's divergence is of these."""
        if self._layers is None:
            return logits
        return layer_logits(logits, self._layers.to(logits.device))

    def _multilabel_loss(
        self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        assert self._layers is not None
        layers = self._layers.to(logits.device)
        return multilabel_loss(logits, batch["labels"], layers, batch.get("unannotated"))

    def _crf_loss(self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        assert self.crf is not None
        return self.crf.nll(logits, batch["labels"], batch.get("unannotated"))

    def transitions(self) -> Transitions | None:
        """The ``crf`` head's learned transitions as the decoder reads them (``None`` for the
        other heads)."""
        return None if self.crf is None else self.crf.export()

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The encoder's groups (:meth:`FineTuning.parameter_groups`) and, for the ``crf`` head,
        its transition scores at ``lr * crf_lr_multiplier`` without weight decay."""
        groups = super().parameter_groups()
        if self.crf is not None:
            lr = self.hparams.lr * self.hparams.crf_lr_multiplier
            params = list(self.crf.parameters())
            groups.append({"params": params, "weight_decay": 0.0, "lr": lr, "name": "crf"})
        return groups

    # ------------------------------------------------------------------ evaluation

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        logits_t, loss = self._forward(batch)
        if loss is not None:
            self.log(f"{stage}/loss", loss, batch_size=batch["input_ids"].shape[0], sync_dist=True)
        logits = logits_t.float().cpu().numpy()
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for row, (index, n) in enumerate(zip(batch["index"].tolist(), lengths)):
            self._logits[index] = logits[row, :n]

    def _dataset(self, stage: str) -> DecodableDataset:
        loaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        dataset = getattr(loaders, "dataset", None)
        if not callable(getattr(dataset, "decode", None)):
            raise TypeError(
                f"{stage}: the dataloader's dataset must decode logits to spans (an EncodedSplit "
                "of bioner.data.datamodule.NERDataModule, one dataloader), not "
                f"{type(loaders).__name__} of {type(dataset).__name__}"
            )
        return dataset

    def _score(self, stage: str) -> None:
        dataset = self._dataset(stage)
        logits = gather_logits(self._logits)
        self._logits = {}
        docs, preds = dataset.decode(logits, self.id2label, self.transitions())
        if self.label_sets is not None and self.label_sets.differ:
            docs, preds, self.set_aside[stage] = self.label_sets.restrict(docs, preds)
        evaluation = evaluate(docs, preds)
        self.results[stage] = StageResult(dataset.split, docs, preds, evaluation)
        # Every rank holds the same numbers; sync_dist only keeps Lightning's DDP checks quiet.
        metrics = {f"{stage}/{k}": v for k, v in evaluation.metrics().items()}
        # Several corpora (dataset=multi): each one's own scores too, on the types it annotates.
        members = []
        for key, (rows, types) in by_corpus(docs).items():
            own = evaluation.subset(rows, types).metrics()
            metrics.update({f"{stage}/{key}/{k}": own[k] for k in CORPUS_METRICS})
            members.append(f"{key} {own['f1']:.4f}")
        self.log_dict(metrics, sync_dist=True)
        when = f"epoch {self.current_epoch} " if self.trainer.state.fn == "fit" else ""
        log.info(
            "%s%s: strict F1 %.4f on %d documents%s",
            when,
            stage,
            metrics[f"{stage}/f1"],
            len(docs),
            f" ({', '.join(members)})" if members else "",
        )

    def on_validation_epoch_start(self) -> None:
        self._dataset("val")  # fail before the first batch, not after the last
        self._logits = {}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            # A couple of batches only prove the loop runs; their scores mean nothing.
            self._logits = {}
            return
        self._score("val")

    def on_test_epoch_start(self) -> None:
        self._dataset("test")
        self._logits = {}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._score("test")

    # ------------------------------------------------------------------ optimisation

    def optimizer_zero_grad(
        self, epoch: int, batch_idx: int, optimizer: torch.optim.Optimizer
    ) -> None:
        # Lightning zeroes gradients between training_step and its backward, which would wipe the
        # gradients an adversary's own backward passes put there; with an adversary they are
        # zeroed after each optimiser step instead (optimizer_step below).
        if self.adversary is None:
            super().optimizer_zero_grad(epoch, batch_idx, optimizer)

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Any,
        optimizer_closure: Any = None,
    ) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.adversary is not None:
            optimizer.zero_grad(set_to_none=True)
