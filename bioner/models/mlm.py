"""Masked-language-model training of an encoder (domain-adaptive pretraining).

:class:`MaskedLanguageModel` wraps ``AutoModelForMaskedLM`` over any
:class:`~bioner.models.encoders.Encoder` checkpoint. Checkpoints without MLM head weights (the
packaged MiniLM is a sentence-transformers model, saved as a bare ``BertModel``; the tiny test
BERT too) get a freshly initialised head whose output projection is tied to the word embeddings,
and a log line says so. :meth:`MaskedLanguageModel.save_encoder` writes a Hugging Face folder
(model and tokenizer) that fine-tunes like any other checkpoint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from bioner.models.encoders import folder_as_data, fp32_weights, quiet_transformers
from bioner.models.module import FineTuning
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from bioner.models.encoders import Encoder

log = get_logger(__name__)


def load_masked_lm(encoder: Encoder) -> PreTrainedModel:
    """``AutoModelForMaskedLM`` from the encoder's checkpoint, with a head even if it has none.

    Missing head weights are initialised by transformers; the output projection is tied to the
    input word embeddings (as in BERT pretraining), so only the small transform and the output
    bias start from scratch. Missing *encoder* weights are an error: continuing pretraining of a
    partly random encoder is not what anybody means.

    Raises:
        ValueError: encoder weights are missing from the checkpoint.
    """
    from transformers import AutoModelForMaskedLM

    path = encoder.resolve()
    with quiet_transformers(), folder_as_data(path):
        model, info = AutoModelForMaskedLM.from_pretrained(
            path, output_loading_info=True, trust_remote_code=False, **fp32_weights()
        )
    prefix = f"{model.base_model_prefix}."
    missing = sorted(info.get("missing_keys", ()))
    encoder_missing = [k for k in missing if k.startswith(prefix)]
    if encoder_missing:
        raise ValueError(
            f"encoder {encoder.name}: {len(encoder_missing)} encoder weights are not in {path} "
            f"(e.g. {encoder_missing[0]}); point the model config at a complete checkpoint"
        )
    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    untied = output is not None and output.weight is not inputs.weight
    if untied and any(k.endswith("decoder.weight") for k in missing):
        # An untied, untrained projection would start from noise; BERT ties it.
        output.weight = inputs.weight
        model.config.tie_word_embeddings = True
    head_missing = [k for k in missing if not k.startswith(prefix)]
    if head_missing:
        tied = output is not None and output.weight is inputs.weight
        log.info(
            "encoder %s: %s has no masked-LM head weights (%s); initialised the head randomly%s",
            encoder.name,
            path,
            ", ".join(head_missing),
            ", its output projection tied to the word embeddings" if tied else "",
        )
    log.info("encoder %s loaded for masked-LM training from %s", encoder.name, path)
    return model


class MaskedLanguageModel(FineTuning):
    """Continue masked-language-model training of an encoder.

    Logs ``train/loss`` every ``trainer.log_every_n_steps`` steps, and ``val/loss`` (mean
    cross-entropy over every predicted sub-word of the held-out text) and ``val/perplexity`` per
    validation pass.

    Args:
        encoder: the :class:`~bioner.models.encoders.Encoder` (``conf/model``).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup_ratio: share of the steps spent warming the learning rate up; it then decays
            linearly to 0.
        adam_epsilon: AdamW's epsilon.
        freeze_encoder: train only the MLM head. A control for checkpoints without a head: the
            loss of a head-only run shows how much of the fall is the head learning, and how much
            is the encoder adapting.
        fused_optimizer: fused AdamW (``None``: where every parameter is on a CPU or CUDA device
            and no loss scaler is used).
        fast_dropout: draw training dropout masks with :mod:`bioner.models.dropout` (``None``:
            on the CPU).
    """

    def __init__(
        self,
        encoder: Encoder,
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.06,
        adam_epsilon: float = 1e-8,
        freeze_encoder: bool = False,
        fused_optimizer: bool | None = None,
        fast_dropout: bool | None = None,
    ) -> None:
        super().__init__()
        self.check_optimisation(lr, weight_decay, warmup_ratio, adam_epsilon)
        self.save_hyperparameters(ignore=["encoder"], logger=False)
        self.encoder_name = encoder.name
        self.model = load_masked_lm(encoder)
        if freeze_encoder:
            for param in self.model.base_model.parameters():
                param.requires_grad = False
            # Tied to the (frozen) word embeddings: the projection stays as the encoder has it.
        self.model.train()  # from_pretrained returns eval mode (no dropout)
        # The head's name, not the module: an attribute would register it twice in state_dict.
        others = [n for n, m in self.model.named_children() if m is not self.model.base_model]
        self._head_name = others[0] if len(others) == 1 else None
        self._val_sum = torch.zeros(())
        self._val_count = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mean MLM loss of ``batch`` (over its predicted sub-words).

        Only about 15% of the positions are predicted, and the vocabulary projection is a large
        part of the compute (half of MiniLM's forward pass), so where the model is a base model
        plus one head module (BERT, RoBERTa, DeBERTa, ...) the head runs on the predicted
        positions only; the loss is the same as ``model(..., labels=...).loss``.
        """
        if self._head_name is None:
            return self.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                labels=batch["labels"],
            ).loss
        hidden = self.model.base_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        )[0]
        predicted = batch["labels"] != -100
        logits = getattr(self.model, self._head_name)(hidden[predicted])
        if not predicted.any():  # short sequences may draw no word: no loss, but a graph
            return logits.sum() * 0.0
        return torch.nn.functional.cross_entropy(logits.float(), batch["labels"][predicted])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        with self.training_dropout():
            loss = self(batch)
        self.log_training_step({"train/loss": loss}, batch["input_ids"].shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sum = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        count = int((batch["labels"] != -100).sum())
        if count:
            # Weighted by predicted sub-words, so the epoch figure is a true per-token mean.
            self._val_sum += self(batch).float().detach() * count
            self._val_count += count

    def on_validation_epoch_end(self) -> None:
        total = self.trainer.strategy.reduce(self._val_sum, reduce_op="sum")
        count = self.trainer.strategy.reduce(
            torch.tensor(float(self._val_count), device=self.device), reduce_op="sum"
        )
        if self.trainer.sanity_checking or not count:
            return
        loss = float(total / count)
        self.log_dict({"val/loss": loss, "val/perplexity": math.exp(min(loss, 50.0))})
        log.info("step %d: validation MLM loss %.4f", self.global_step, loss)

    def save_encoder(
        self,
        folder: str | Path,
        tokenizer: PreTrainedTokenizerBase,
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Write the model and tokenizer (``save_pretrained``) and ``bioner_pretrain.json``.

        The folder fine-tunes as ``model=hub model.name_or_path=<folder> model.name=<name>``:
        the tokenizer is saved exactly as it was used here, and its ``tokenizer_config.json``
        says how (``model=hub`` sets no tokenizer argument of its own).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        info = {"base_encoder": self.encoder_name, "steps": self.global_step, **(metadata or {})}
        (folder / "bioner_pretrain.json").write_text(json.dumps(info, indent=2) + "\n")
        return folder
