"""Training augmentation through the real configs: fresh, seeded, label-preserving draws."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
from hydra.utils import instantiate
from test_train import compose

from bioner.augment.callback import Augmentation
from bioner.config import CONFIG_DIR, compose_config
from bioner.data.document import Document
from bioner.runtime.run import instantiate_callbacks
from bioner.train import train

REPO = Path(__file__).resolve().parents[2]
AUGMENTATIONS = sorted(p.stem for p in (CONFIG_DIR / "augmentation").glob("*.yaml"))
# Back-translation needs MarianMT from the hub; its training run uses the offline translator.
OFFLINE = {
    "back_translation": [
        "~augmentation.transform.translator",
        "+augmentation.transform.translator={_target_:bioner.augment.LexiconTranslator,"
        "pairs:{en-de:{patients:Patienten,treated:behandelt,with:mit},"
        "de-en:{Patienten:subjects,behandelt:managed,mit:using}}}",
    ]
}


class EpochDocuments(L.Callback):
    """Records the documents of the training loader of every epoch."""

    def __init__(self) -> None:
        self.epochs: list[list[Document]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append(list(trainer.train_dataloader.dataset.docs))


def test_the_augmentation_options_are_the_documented_ones() -> None:
    assert set(AUGMENTATIONS) == {
        "none",
        "mention_replacement",
        "synonym",
        "token_replacement",
        "shuffle",
        "noise",
        "back_translation",
        "mix",
    }


@pytest.mark.parametrize("name", [a for a in AUGMENTATIONS if a != "none"])
def test_every_augmentation_trains_on_fresh_label_preserving_draws(
    name: str, tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    record = EpochDocuments()
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        f"augmentation={name}",
        *OFFLINE.get(name, []),
        "augmentation.probability=1.0",
        f"paths.data_dir={shared_data}",
        "data.limit_documents=40",
        "data.batch_size=8",
        "trainer.max_epochs=2",
        "trainer.limit_val_batches=1",
        "bootstrap_samples=0",
        "test=false",
    )
    train(cfg, [record])

    original = instantiate(cfg.dataset).load("train")[:40]
    assert len(record.epochs) == 2
    for docs in record.epochs:
        assert len(docs) == len(original)  # no document dropped
        for old, new in zip(original, docs):
            new.validate()
            # Every gold span is still there with its label; only the text may change.
            assert [s.label for s in new.spans] == [s.label for s in old.spans]
            assert len(new.sentences) == len(old.sentences)
    changed = [sum(a.text != b.text for a, b in zip(original, docs)) for docs in record.epochs]
    assert min(changed) > 0, f"{name} changed no training document: {changed}"
    # Fresh draws every epoch.
    assert [d.text for d in record.epochs[0]] != [d.text for d in record.epochs[1]]


def test_draws_depend_on_seed_epoch_and_document_only(shared_data: Path, tmp_path: Path) -> None:
    cfg = compose_config("data", [f"paths.data_dir={shared_data}", "augmentation=mix", "seed=3"])
    docs = instantiate(cfg.dataset).load("train")[:30]
    (a,) = instantiate_callbacks(None, augmentation=cfg.augmentation)
    (b,) = instantiate_callbacks(None, augmentation=cfg.augmentation)
    assert isinstance(a, Augmentation) and a.seed == 3
    a.fit(docs)
    b.fit(docs)
    first = [d.text for d in a.augment(docs, epoch=0)]
    assert first == [d.text for d in b.augment(docs, epoch=0)]
    assert first != [d.text for d in a.augment(docs, epoch=1)]
    # One document alone gets what it gets among the others (workers, subsets, resumes).
    assert a.augment_one(docs[7], 7, epoch=0).text == first[7]


def test_devel_and_test_are_never_augmented(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
):
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        "augmentation=mention_replacement",
        "augmentation.probability=1.0",
        "augmentation.transform.rate=1.0",
        f"paths.data_dir={shared_data}",
        "data.limit_documents=16",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
    )
    summary = train(cfg)
    reader = instantiate(cfg.dataset)
    for split in ("devel", "test"):
        gold = reader.load(split)[:16]
        assert summary[split]["documents"] == len(gold)
        m = summary[split]["metrics"]
        assert m["tp"] + m["fn"] == sum(len(d.spans) for d in gold)


class StepRecorder(L.Callback):
    """The learning rate of every optimiser step and the batches of every epoch."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.batches: list[int] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.batches.append(int(trainer.num_training_batches))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_the_schedule_ends_on_the_last_step_when_augmentation_changes_epoch_lengths(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    record = StepRecorder()
    cfg = compose(
        tmp_path,
        tiny_model_dir,
        "augmentation=mix",
        f"paths.data_dir={shared_data}",
        "data.limit_documents=60",
        "data.batch_size=4",
        # Short windows: an augmented sentence of other length is cut into another number of
        # windows, so each epoch has its own number of batches.
        "alignment.max_length=12",
        "alignment.stride=4",
        "trainer.max_epochs=4",
        "trainer.limit_val_batches=1",
        "module.warmup_ratio=0.1",
        "callbacks.early_stopping=null",
        "bootstrap_samples=0",
        "test=false",
    )
    trainer_steps: list[int] = []

    class Final(L.Callback):
        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            trainer_steps.append(trainer.global_step)
            record.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])  # after the last step

    train(cfg, [record, Final()])
    assert len(set(record.batches)) > 1, record.batches  # the epochs did differ in length
    assert trainer_steps == [sum(record.batches)]
    used, final = record.lrs[:-1], record.lrs[-1]
    assert len(used) == sum(record.batches)
    # Every step trains (no step at lr 0 after an early end), and the decay ends at 0 exactly
    # after the last one (not above 0, as when epochs got shorter than planned).
    assert min(used) > 0 and final == 0.0
    assert max(used) == pytest.approx(cfg.module.lr, rel=0.05)
