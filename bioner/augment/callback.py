"""Training augmentation as a Lightning callback: fresh, seeded draws for every epoch.

``conf/augmentation/<name>.yaml`` builds an :class:`Augmentation` around a transform of
:mod:`bioner.augment`; ``bioner-train`` adds it to the trainer like any callback. At the start of
fitting it fits the transform on the training documents (mention pools, tag vocabularies), hands
the datamodule a function that augments the training documents for a given epoch, and has
Lightning reload the training loader every epoch. Document ``i`` of epoch ``e`` is transformed
with ``numpy.random.default_rng([seed, e, i])`` (:func:`~bioner.augment.perturb`), so draws are
fresh every epoch, identical on every DDP rank, and a resumed run (``ckpt_path=last``) sees the
same documents as an uninterrupted one. Devel and test are never augmented.

Every augmented document keeps its gold spans exact (:mod:`bioner.augment.edits`): nothing is
dropped or relabelled. Each epoch logs ``augment/documents_changed`` and
``augment/mentions_changed`` (shares of the training documents and mentions whose text changed).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np

from bioner.augment.base import Mix, Transform, check_rate, perturb
from bioner.data.document import Document
from bioner.utils.log import get_logger

log = get_logger(__name__)


class Augmentation(L.Callback):
    """Augment the training documents on the fly with ``transform``.

    Stateless across checkpoints: the draws depend only on (seed, epoch, document), so a resumed
    run needs nothing restored.

    Args:
        transform: a label-preserving transform (``Mix`` for several); fitted on the training
            documents when fitting starts.
        seed: seed of the draws (the run's seed in the configs).
        probability: share of the training documents transformed in each epoch (each document
            is drawn anew every epoch); the others are seen as they are, so the model keeps
            seeing clean text.
        name: the label of runs and dashboards (``augmentation.name`` in the configs); by
            default the transform's class name in lower case.
    """

    def __init__(
        self,
        transform: Transform,
        seed: int = 0,
        probability: float = 1.0,
        name: str | None = None,
    ) -> None:
        if not isinstance(transform, Transform):
            raise TypeError(f"Augmentation needs a bioner.augment.Transform, not {transform!r}")
        self.name = name or type(transform).__name__.lower()
        self.probability = check_rate("augmentation probability", probability)
        self.transform = transform if self.probability == 1.0 else Mix([transform], [probability])
        self.seed = seed
        self._fitted: Transform | None = None
        self._stats: dict[str, float] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "augmentation"):
            raise TypeError(
                "augmentation needs bioner's NERDataModule (trainer.fit(model, datamodule=...)); "
                "use augmentation=none otherwise"
            )
        self.fit(datamodule.documents("train"))
        datamodule.augmentation = self.augment
        # Lightning rebuilds the training loader (and so calls `augment`) before every epoch.
        trainer.reload_dataloaders_every_n_epochs = 1
        log.info("augmentation: %r, fresh draws every epoch (seed %d)", self._fitted, self.seed)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and getattr(trainer.datamodule, "augmentation", None) == self.augment:
            trainer.datamodule.augmentation = None

    def fit(self, train_docs: Sequence[Document]) -> None:
        """Fit the transform on the training documents (done by ``setup`` when fitting)."""
        self._fitted = self.transform.fit(train_docs)

    def _ready(self) -> Transform:
        if self._fitted is None:
            raise RuntimeError("Augmentation used before fit(): the transform is not fitted")
        return self._fitted

    def augment_one(self, doc: Document, index: int, epoch: int) -> Document:
        """Document ``index`` of the training split as :meth:`augment` makes it in ``epoch``."""
        return self._ready()(doc, np.random.default_rng([self.seed, epoch, index])).document

    def augment(self, docs: list[Document], epoch: int) -> list[Document]:
        """The training documents of ``epoch``: each transformed with its own seeded generator."""
        results = perturb(docs, self._ready(), seed=(self.seed, epoch))
        changed = sum(r.n_edits > 0 for r in results)
        mentions = sum(len(r.original.spans) for r in results)
        mentions_changed = sum(sum(r.changed_spans()) for r in results)
        self._stats = {
            "augment/documents_changed": changed / max(len(results), 1),
            "augment/mentions_changed": mentions_changed / max(mentions, 1),
        }
        log.info(
            "augmentation, epoch %d: %d of %d training documents changed, %d of %d mentions",
            epoch,
            changed,
            len(results),
            mentions_changed,
            mentions,
        )
        return [r.document for r in results]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for key, value in self._stats.items():
            pl_module.log(key, value, on_step=False, on_epoch=True, rank_zero_only=True)
