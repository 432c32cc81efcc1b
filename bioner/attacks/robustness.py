"""Robustness evaluation (``conf/robustness``): how much strict F1 a trained tagger keeps under
attack in the embedding space and under perturbations of the text.

* Embedding space: each attack (FGSM, PGD, ...) is aimed at the gold labels of every evaluated
  sequence, at each of its epsilons, with the model in evaluation mode; the perturbed logits are
  decoded to spans exactly as in evaluation and scored with strict F1.
* Text space: :func:`bioner.augment.robustness.text_robustness` over the label-preserving
  perturbations of :mod:`bioner.augment` (typos inside and outside entities, case, context
  synonyms, same-type mention replacement, abbreviations), predicted with
  :class:`bioner.inference.Tagger`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from bioner.attacks.adversaries import Adversary, special_token_ids
from bioner.attacks.perturbation import embedding_logits, word_embeddings
from bioner.augment.robustness import TEXT_KINDS, default_perturbations, text_robustness
from bioner.data.batching import Collator
from bioner.data.document import Document, Span
from bioner.data.encoded import EncodedSplit, predict_split
from bioner.evaluation import evaluate
from bioner.models.adversarial import HeadLoss
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from bioner.data.alignment import Transitions
    from bioner.preprocess import Preprocessor

log = get_logger(__name__)


def subset(dataset: EncodedSplit, n: int | None) -> EncodedSplit:
    """The first ``n`` documents of ``dataset`` with their features (all of it when ``None``)."""
    if n is None or n >= len(dataset.docs):
        return dataset
    keep = [i for i, d in enumerate(dataset.doc_index) if d < n]
    return EncodedSplit(
        dataset.split,
        dataset.docs[:n],
        [dataset.features[i] for i in keep],
        [dataset.doc_index[i] for i in keep],
        dataset.alignment,
        # With preprocessing, spans decode onto the original documents and are scored there.
        None if dataset.originals is None else dataset.originals[:n],
        None if dataset.maps is None else dataset.maps[:n],
    )


def predict_attacked(
    model: PreTrainedModel,
    dataset: EncodedSplit,
    collator: Collator,
    attack: Adversary | None,
    epsilon: float,
    special_ids: Sequence[int],
    id2label: Mapping[int, str],
    batch_size: int = 64,
    head_loss: HeadLoss | None = None,
    transitions: Transitions | None = None,
) -> tuple[list[Document], list[list[Span]]]:
    """The spans of every document of ``dataset`` with its word embeddings perturbed by
    ``attack`` at ``epsilon``, aimed at the gold labels through the model's loss (``head_loss``:
    its head's; no attack, or epsilon 0: clean), through the one inference path
    (:func:`bioner.data.encoded.predict_split`; ``transitions``: the ``crf`` head's)."""
    device = next(model.parameters()).device

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = {k: v.to(device) for k, v in batch.items()}
        if "labels" not in batch:
            raise ValueError(f"{dataset.split}: robustness under attack needs gold labels")
        delta = None
        if attack is not None and epsilon > 0:
            delta = attack.attack(model, batch, epsilon, special_ids, head_loss)
        with torch.no_grad():
            embeds = word_embeddings(model, batch["input_ids"])
            return embedding_logits(model, embeds if delta is None else embeds + delta, batch)

    return predict_split(dataset, forward, collator, id2label, batch_size, transitions=transitions)


class Robustness:
    """Clean F1 against F1 under embedding attacks and text perturbations.

    Args:
        attacks: name -> adversary (its own ``epsilon`` is ignored here; see ``epsilons``).
        epsilons: name -> the epsilons at which that attack is evaluated.
        text_kinds: the text perturbations to apply (a subset of :data:`TEXT_KINDS`); empty: none.
        text_rate: rate of the text perturbations (per word, mention or lexicon match), but
            ``abbreviation``'s, 1 (see :func:`bioner.augment.robustness.default_perturbations`).
        synonyms: context-synonym lexicon TSV (``None``: the shipped general-English one).
        seed: seed of the text perturbations.
        limit_documents: evaluate the first ``n`` documents only (``None``: all); attacks cost a
            forward and backward pass per step and epsilon.
        batch_size: sequences per forward pass.
        split: the evaluated split (``test``; the caller passes its encoded documents).
        name: labels the setting in dashboards; not used otherwise.
    """

    def __init__(
        self,
        attacks: Mapping[str, Adversary] | None = None,
        epsilons: Mapping[str, Sequence[float]] | None = None,
        text_kinds: Sequence[str] = TEXT_KINDS,
        text_rate: float = 0.1,
        synonyms: str | None = None,
        seed: int = 0,
        limit_documents: int | None = None,
        batch_size: int = 64,
        split: str = "test",
        name: str = "default",
    ) -> None:
        self.attacks = dict(attacks or {})
        self.epsilons = {k: sorted(float(e) for e in v) for k, v in (epsilons or {}).items()}
        missing = set(self.attacks) ^ set(self.epsilons)
        if missing:
            raise ValueError(
                f"robustness: every attack needs its list of epsilons and every list an attack; "
                f"unmatched: {sorted(missing)}"
            )
        unknown = set(text_kinds) - set(TEXT_KINDS)
        if unknown:
            raise ValueError(f"robustness.text_kinds: unknown {sorted(unknown)}; use {TEXT_KINDS}")
        if any(e < 0 for v in self.epsilons.values() for e in v):
            raise ValueError("robustness epsilons must be >= 0")
        self.text_kinds = list(text_kinds)
        self.text_rate = text_rate
        self.synonyms = synonyms
        self.seed = seed
        self.limit_documents = limit_documents
        self.batch_size = batch_size
        self.split = split
        self.name = name

    def evaluate(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        dataset: EncodedSplit,
        id2label: Mapping[int, str],
        precision: str | None = None,
        preprocess: Preprocessor | None = None,
        head_loss: HeadLoss | None = None,
        transitions: Transitions | None = None,
    ) -> dict[str, Any]:
        """Score ``model`` on ``dataset`` clean, under every attack and epsilon, and under every
        text perturbation; return a JSON-ready dict (``metrics.json["robustness"]``).

        ``precision`` is the run's (``bf16-mixed``: forward passes under bf16 autocast, as in
        training and evaluation, several times faster on hardware with native bf16).
        ``preprocess`` is the run's fitted text normalisation (the data module's): text
        perturbations then rewrite the *original* documents, as noise reaches raw text, and the
        tagger normalises the perturbed text before the model sees it, as ``bioner-predict``
        does; spans are scored on the perturbed original text. ``head_loss`` and ``transitions``
        are the model's head's (:class:`bioner.models.module.TokenClassifier`): attacks raise
        that loss, and a ``crf`` head decodes with its transitions.
        """
        from bioner.inference.tagger import Tagger

        whole = dataset.given_docs
        dataset = subset(dataset, self.limit_documents)
        was_training = model.training
        model.eval()  # no dropout: the attack and the scores see the same function
        collator = Collator(tokenizer.pad_token_id)
        specials = special_token_ids(tokenizer)

        bf16 = precision is not None and str(precision).startswith("bf16")
        device = next(model.parameters()).device.type

        def f1_under(attack: Adversary | None, epsilon: float) -> float:
            autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else nullcontext()
            with autocast:
                docs, preds = predict_attacked(
                    model,
                    dataset,
                    collator,
                    attack,
                    epsilon,
                    specials,
                    id2label,
                    self.batch_size,
                    head_loss,
                    transitions,
                )
            return evaluate(docs, preds).metrics()["f1"]

        try:
            clean = f1_under(None, 0.0)
            result: dict[str, Any] = {
                "split": dataset.split,
                "documents": len(dataset.docs),
                "f1_clean": clean,
                "embedding": {},
            }
            for name, attack in self.attacks.items():
                scores = [f1_under(attack, e) for e in self.epsilons[name]]
                result["embedding"][name] = {
                    "attack": repr(attack),
                    "epsilons": self.epsilons[name],
                    "f1": scores,
                    "drop": [clean - f for f in scores],
                }
                log.info(
                    "robustness %s: F1 %s at epsilons %s (clean %.4f)",
                    name,
                    [round(f, 4) for f in scores],
                    self.epsilons[name],
                    clean,
                )
            if self.text_kinds:
                # With preprocessing, dataset.docs are the normalised documents: noise belongs
                # in the text a user hands over, before normalisation gets a chance to undo it.
                docs = dataset.given_docs
                # Abbreviations defined anywhere in the split: in one part they are too few.
                chosen = default_perturbations(
                    docs, self.text_rate, self.synonyms, abbreviations=whole, kinds=self.text_kinds
                )
                tagger = Tagger(
                    [(model, tokenizer, dataset.alignment)],
                    batch_size=self.batch_size,
                    precision="bf16" if bf16 else "32",
                    preprocess=[preprocess],
                    transitions=[transitions],
                )
                result["text"] = text_robustness(
                    docs, tagger.predict_documents, chosen, seed=self.seed
                )
                for kind, scores in result["text"].items():
                    log.info(
                        "robustness %s: F1 %.4f (drop %.4f), flip rate %.4f",
                        kind,
                        scores["f1"],
                        scores["drop"],
                        scores["flip_rate"],
                    )
        finally:
            model.train(was_training)
        return result


def plot_robustness(result: Mapping[str, Any], path: str | Path) -> Path | None:
    """Strict F1 against epsilon, one line per attack; ``None`` when there is no attack."""
    if not result.get("embedding"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, scores in result["embedding"].items():
        points = [(0.0, result["f1_clean"])]
        points += [(e, f) for e, f in zip(scores["epsilons"], scores["f1"]) if e > 0]
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xlabel("epsilon")
    ax.set_ylabel(f"strict F1 ({result['split']})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
