"""Robustness evaluation of a trained tagger: embedding attacks at several epsilons, text
perturbations, the plot, and the config group."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
from hydra.utils import instantiate

from bioner.attacks import FGSM, PGD, robustness
from bioner.attacks.robustness import Robustness, plot_robustness, subset
from bioner.augment.robustness import default_perturbations
from bioner.config import compose_config
from bioner.data.alignment import Alignment
from bioner.data.datamodule import NERDataModule
from bioner.data.readers import IOBReader
from bioner.evaluation import evaluate
from bioner.models.encoders import HubEncoder
from bioner.models.module import TokenClassifier


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, fixtures_dir: Path) -> tuple[TokenClassifier, NERDataModule]:
    """The tiny BERT trained until it tags its few training sentences perfectly."""
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    reader = IOBReader(name="fixture", data_dir=fixtures_dir / "iob", entity_types=None)
    datamodule = NERDataModule(reader, Alignment(), encoder.load_tokenizer(), batch_size=4)
    L.seed_everything(0)
    module = TokenClassifier(encoder, datamodule.id2label, lr=3e-3, warmup_ratio=0.0, dropout=0.0)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=60,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=datamodule)
    return module, datamodule


def test_scores_fall_under_attack_and_perturbation(trained, tmp_path: Path) -> None:
    module, datamodule = trained
    train = datamodule.encoded("train")
    suite = Robustness(
        attacks={"fgsm": FGSM(epsilon=1.0), "pgd": PGD(epsilon=1.0, steps=3, norm="l2")},
        epsilons={"fgsm": [0.0, 0.5], "pgd": [0.0, 0.5, 3.0]},
        text_kinds=["typos_inside", "case"],
        text_rate=1.0,
        seed=3,
    )
    result = suite.evaluate(module.model, datamodule.tokenizer, train, module.id2label)
    assert module.model.training  # the training mode is restored
    assert result["f1_clean"] == 1.0  # the memorised training sentences
    pgd, fgsm = result["embedding"]["pgd"], result["embedding"]["fgsm"]
    assert pgd["f1"][0] == fgsm["f1"][0] == 1.0  # epsilon 0 is the clean score
    assert pgd["f1"][2] <= pgd["f1"][1] < 1.0 and fgsm["f1"][1] < 1.0
    assert pgd["drop"] == pytest.approx([1.0 - f for f in pgd["f1"]])
    assert set(result["text"]) == {"typos_inside", "case"}
    typos = result["text"]["typos_inside"]
    assert typos["f1_clean"] == 1.0 and typos["n_entities_changed"] > 0
    assert typos["drop"] == pytest.approx(1.0 - typos["f1"])
    png = plot_robustness(result, tmp_path / "robustness.png")
    assert png is not None and png.stat().st_size > 0


def test_clean_score_equals_the_evaluation_pass(trained) -> None:
    module, datamodule = trained
    devel = datamodule.encoded("devel")
    result = Robustness(text_kinds=[]).evaluate(
        module.model, datamodule.tokenizer, devel, module.id2label
    )
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    trainer.validate(module, datamodule=datamodule, verbose=False)
    assert result["f1_clean"] == pytest.approx(module.results["val"].evaluation.metrics()["f1"])
    assert result["embedding"] == {} and "text" not in result


def test_abbreviations_come_from_the_whole_split_when_a_part_is_scored(
    trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, datamodule = trained
    train = datamodule.encoded("train")
    seen = {}

    def spy(docs, *args, abbreviations=None, **kwargs):
        seen["docs"], seen["abbreviations"] = list(docs), list(abbreviations)
        return default_perturbations(docs, *args, abbreviations=abbreviations, **kwargs)

    monkeypatch.setattr(robustness, "default_perturbations", spy)
    result = Robustness(text_kinds=["abbreviation"], limit_documents=2).evaluate(
        module.model, datamodule.tokenizer, train, module.id2label
    )
    assert seen == {"docs": train.docs[:2], "abbreviations": train.docs}
    assert set(result["text"]) == {"abbreviation"}


def test_subset_keeps_whole_documents(trained) -> None:
    _, datamodule = trained
    train = datamodule.encoded("train")
    part = subset(train, 2)
    assert part.docs == train.docs[:2]
    assert len(part.features) == sum(1 for d in train.doc_index if d < 2)
    assert subset(train, None) is train
    gold = [d.spans for d in part.docs]
    assert evaluate(part.docs, gold).metrics()["f1"] == 1.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unmatched"):
        Robustness(attacks={"pgd": PGD(epsilon=1.0)}, epsilons={})
    with pytest.raises(ValueError, match="unknown"):
        Robustness(text_kinds=["leetspeak"])


def test_the_default_config_builds_the_suite(tmp_path: Path) -> None:
    for name in ("train", "eval"):
        overrides = [f"run_dir={tmp_path}", "robustness=default"]
        if name == "eval":
            overrides.append("ckpt_path=x.ckpt")
        suite = instantiate(compose_config(name, overrides).robustness)
        assert isinstance(suite, Robustness) and suite.split == "test"
        assert set(suite.attacks) == {"fgsm", "pgd"}
        assert all(e > 0 for eps in suite.epsilons.values() for e in eps)
    assert "_target_" not in compose_config("train", [f"run_dir={tmp_path}"]).robustness
