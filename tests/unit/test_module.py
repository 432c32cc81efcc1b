"""TokenClassifier: optimiser groups, schedule, training under bf16 with clipping, span scoring."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from bioner.data.alignment import Alignment
from bioner.data.datamodule import NERDataModule
from bioner.data.readers import IOBReader
from bioner.errors import ConfigError
from bioner.models.encoders import HubEncoder
from bioner.models.mlm import MaskedLanguageModel
from bioner.models.module import (
    LinearWarmupDecay,
    TokenClassifier,
    decay_groups,
    layer_decay_groups,
    layer_depths,
    merge_logits,
)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> HubEncoder:
    return HubEncoder(str(tiny_model_dir), name="tiny")


@pytest.fixture()
def datamodule(encoder: HubEncoder, fixtures_dir: Path) -> NERDataModule:
    reader = IOBReader(name="fixture", data_dir=fixtures_dir / "iob", entity_types=None)
    return NERDataModule(reader, Alignment(), encoder.load_tokenizer(), batch_size=2)


def make_trainer(**kwargs) -> L.Trainer:
    settings = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**{**settings, **kwargs})


def test_no_weight_decay_on_biases_and_layernorm(encoder: HubEncoder) -> None:
    model = encoder.load_model({0: "O", 1: "B-X", 2: "I-X"})
    decay, no_decay = decay_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert decayed | exempt == set(names.values()) and not decayed & exempt
    assert all(n.endswith("bias") or "LayerNorm" in n for n in exempt)
    assert any("LayerNorm.weight" in n for n in exempt)
    assert "classifier.weight" in decayed and "classifier.bias" in exempt


def _tiny_config(kind: str):
    import transformers

    sizes = dict(vocab_size=64, hidden_size=16, num_attention_heads=2, num_labels=3)
    if kind == "distilbert":
        return transformers.DistilBertConfig(
            vocab_size=64, dim=16, n_layers=3, n_heads=2, hidden_dim=32, num_labels=3
        )
    config = {
        "bert": transformers.BertConfig,
        "roberta": transformers.RobertaConfig,
        "electra": transformers.ElectraConfig,
        "deberta-v2": transformers.DebertaV2Config,
    }[kind]
    extra = {"relative_attention": True, "position_buckets": 8} if kind == "deberta-v2" else {}
    return config(num_hidden_layers=3, intermediate_size=32, **sizes, **extra)


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra", "distilbert", "deberta-v2"])
def test_layer_depths_of_common_encoders(kind: str) -> None:
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_config(_tiny_config(kind))
    depths, layers = layer_depths(model)
    assert layers == 3
    assert depths.keys() == dict(model.named_parameters()).keys()
    by_depth: dict[int, list[str]] = {}
    for name, depth in depths.items():
        by_depth.setdefault(depth, []).append(name)
    assert sorted(by_depth) == [0, 1, 2, 3, 4]  # embeddings, three layers, the head
    assert all("embedding" in name for name in by_depth[0])
    for i in range(3):
        assert all(re.search(rf"\.layers?\.{i}\.", name) for name in by_depth[i + 1])
    assert {"classifier.weight", "classifier.bias"} <= set(by_depth[4])


def test_layer_decay_groups_split_each_group_by_depth(encoder: HubEncoder) -> None:
    model = encoder.load_model({0: "O", 1: "B-X", 2: "I-X"})
    groups = decay_groups(model, 0.01)
    assert layer_decay_groups(model, groups, 1e-3, 1.0) is groups
    split = layer_decay_groups(model, groups, 1e-3, 0.5)
    depths, layers = layer_depths(model)
    names = {id(p): n for n, p in model.named_parameters()}
    # Every parameter once, with its weight decay kept and the rate of its depth.
    seen = [names[id(p)] for g in split for p in g["params"]]
    assert sorted(seen) == sorted(names.values())
    kept = {names[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}
    for group in split:
        part, kind = group["name"].split("/")
        assert kind in ("weights", "biases_norms")
        for param in group["params"]:
            name = names[id(param)]
            assert group["weight_decay"] == kept[name]
            assert group["lr"] == pytest.approx(1e-3 * 0.5 ** (layers + 1 - depths[name]))
    rates = {g["name"]: g["lr"] for g in split}
    assert rates["head/weights"] == 1e-3 and rates["head/biases_norms"] == 1e-3
    assert rates[f"layer_{layers - 1}/weights"] == pytest.approx(5e-4)
    assert rates["embeddings/weights"] == pytest.approx(1e-3 * 0.5 ** (layers + 1))


def test_layer_decay_needs_numbered_layers() -> None:
    model = torch.nn.Sequential(torch.nn.Embedding(8, 4), torch.nn.Linear(4, 3))
    with pytest.raises(ConfigError, match=r"no numbered layers.*module.layer_lr_decay=1.0"):
        layer_depths(model)


def test_layer_decay_trains_with_its_rates_under_the_schedule(
    encoder: HubEncoder, datamodule: NERDataModule
) -> None:
    class FirstStepRates(L.Callback):
        def __init__(self) -> None:
            self.rates: dict[str, float] = {}

        def on_train_batch_end(self, trainer, *args) -> None:
            if not self.rates:
                groups = trainer.optimizers[0].param_groups
                self.rates.update({g["name"]: g["lr"] for g in groups})

    module = TokenClassifier(
        encoder, datamodule.id2label, lr=1e-3, warmup_ratio=0.5, layer_lr_decay=0.5
    )
    record = FirstStepRates()
    trainer = make_trainer(max_steps=4, limit_val_batches=0, callbacks=[record])
    embeddings = module.model.bert.embeddings.word_embeddings.weight.detach().clone()
    trainer.fit(module, datamodule=datamodule)
    top = record.rates["head/weights"]
    assert 0 < top < 1e-3  # in the warm-up: the schedule scales every group alike
    assert record.rates["embeddings/weights"] == pytest.approx(top * 0.5**3)  # 2 layers + 1
    assert record.rates["layer_1/biases_norms"] == pytest.approx(top * 0.5)
    assert not torch.equal(embeddings, module.model.bert.embeddings.word_embeddings.weight)


def test_linear_warmup_then_decay_to_zero() -> None:
    f = LinearWarmupDecay(warmup_steps=4, total_steps=20)
    values = [f(s) for s in range(21)]
    assert 0 < values[0] < values[1] < values[3] < 1
    assert values[4] == 1.0
    assert all(a >= b for a, b in zip(values[4:], values[5:]))
    assert values[20] == 0.0
    assert LinearWarmupDecay(0, 10)(0) == 1.0


def test_merge_keeps_one_copy_of_features_seen_on_two_ranks() -> None:
    a, b, c = np.zeros((3, 2)), np.ones((4, 2)), np.full((2, 2), 2.0)
    merged = merge_logits([{0: a, 5: b}, {5: b, 7: c}, None])
    assert sorted(merged) == [0, 5, 7]
    assert merged[5] is b


def test_module_trains_in_train_mode_and_saves_plain_hparams(encoder: HubEncoder) -> None:
    from omegaconf import OmegaConf

    id2label = OmegaConf.create({0: "O", 1: "B-X", 2: "I-X"})  # as Hydra passes it
    module = TokenClassifier(encoder, id2label)
    assert module.model.training  # from_pretrained leaves eval mode, which disables dropout
    assert type(module.hparams["id2label"]) is dict
    assert module.id2label == {0: "O", 1: "B-X", 2: "I-X"}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"lr": -1.0}, r"module.lr=-1.0: must be a positive number"),
        ({"lr": 0.0}, r"module.lr=0.0: must be a positive number"),
        ({"weight_decay": -0.1}, r"module.weight_decay=-0.1: must be 0 or more"),
        ({"warmup_ratio": 1.5}, r"module.warmup_ratio=1.5: must be in \[0, 1\]"),
        ({"adam_epsilon": 0.0}, r"module.adam_epsilon=0.0: must be a positive number"),
        ({"dropout": 1.0}, r"module.dropout=1.0: must be in \[0, 1\)"),
        ({"layer_lr_decay": 0.0}, r"module.layer_lr_decay=0.0: must be in \(0, 1\]"),
        ({"layer_lr_decay": 1.2}, r"module.layer_lr_decay=1.2: must be in \(0, 1\]"),
    ],
)
def test_optimisation_settings_out_of_range_are_config_errors(setting: dict, message: str) -> None:
    """Refused before any weights load, naming the key (not the optimiser's error at the first
    step, a traceback from inside Lightning)."""

    class NoWeights:
        name = "unloadable"

        def __getattr__(self, attribute: str):
            raise AssertionError(f"encoder.{attribute} used before the settings were checked")

    with pytest.raises(ConfigError, match=message):
        TokenClassifier(NoWeights(), {0: "O", 1: "B-X", 2: "I-X"}, **setting)
    if not {"dropout", "layer_lr_decay"} & setting.keys():  # the tagger's own settings
        with pytest.raises(ConfigError, match=message):
            MaskedLanguageModel(NoWeights(), **setting)


def test_model_summary_counts_the_flops_of_one_forward_pass(encoder: HubEncoder) -> None:
    from lightning.pytorch.utilities.model_summary import summarize

    module = TokenClassifier(encoder, {0: "O", 1: "B-X", 2: "I-X"})
    summary = summarize(module)
    # One sequence of 128 sub-words: two FLOPs (multiply, add) per weight of each matrix of the
    # encoder's layers and per sub-word, and more for attention itself.
    layer_weights = sum(
        p.numel() for n, p in module.named_parameters() if "encoder.layer" in n and p.dim() == 2
    )
    assert summary.total_flops >= 2 * 128 * layer_weights
    assert module.model.training  # the summary's forward pass leaves training mode as it was


def test_bf16_training_with_clipping_and_fused_adamw(
    encoder: HubEncoder, datamodule: NERDataModule
) -> None:
    module = TokenClassifier(encoder, datamodule.id2label, lr=1e-3, warmup_ratio=0.5)
    trainer = make_trainer(
        max_epochs=2, precision="bf16-mixed", gradient_clip_val=1.0, limit_val_batches=0
    )
    before = module.model.classifier.weight.detach().clone()
    trainer.fit(module, datamodule=datamodule)
    optimizer = trainer.optimizers[0]
    assert optimizer.defaults["fused"] is True
    assert not torch.equal(before, module.model.classifier.weight)
    steps = trainer.global_step
    assert steps == 2 * len(datamodule.train_dataloader())
    # Linear decay ends at zero on the last step.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_validation_scores_decoded_spans_of_every_document(
    encoder: HubEncoder, datamodule: NERDataModule
) -> None:
    module = TokenClassifier(encoder, datamodule.id2label)
    trainer = make_trainer(precision="32-true")
    logged = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    result = module.results["val"]
    split = datamodule.encoded("devel")
    gold = split.docs
    assert result.split == "devel" and [d.id for d in result.docs] == [d.id for d in gold]
    # The predictions are the alignment's decoding of the model's own logits, computed here one
    # feature at a time (the validation pass batched and padded them).
    logits = {}
    module.model.eval()  # Lightning puts it back into training mode after validating
    with torch.inference_mode():
        for i, feature in enumerate(split.features):
            ids = torch.tensor([feature.input_ids])
            out = module.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            logits[i] = out[0].numpy()
    assert result.predictions == split.decode(logits, module.id2label)[1]
    # The scores are those of the predictions, counted here by hand.
    tp = sum(len(set(d.spans) & set(p)) for d, p in zip(gold, result.predictions))
    n_pred = sum(len(p) for p in result.predictions)
    n_gold = sum(len(d.spans) for d in gold)
    expected = {"tp": tp, "fp": n_pred - tp, "fn": n_gold - tp, "f1": 2 * tp / (n_pred + n_gold)}
    metrics = result.evaluation.metrics()
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert logged["val/f1"] == pytest.approx(expected["f1"], abs=1e-6)
    for entity_type in result.evaluation.types:
        assert f"val/f1_{entity_type}" in logged
    assert "val/loss" in logged
    # Same weights, same batches: a test pass over the same split scores the same.
    trainer.test(module, dataloaders=datamodule.val_dataloader(), verbose=False)
    assert module.results["test"].predictions == result.predictions


def test_evaluation_needs_a_decodable_dataset(encoder: HubEncoder) -> None:
    module = TokenClassifier(encoder, {0: "O", 1: "B-X", 2: "I-X"})
    loader = torch.utils.data.DataLoader(
        [{"input_ids": torch.tensor([101, 102]), "attention_mask": torch.tensor([1, 1])}],
        batch_size=None,
    )
    with pytest.raises(TypeError, match="decode logits to spans"):
        make_trainer().validate(module, dataloaders=loader, verbose=False)


def test_fast_dropout_on_the_cpu_but_never_with_gradient_checkpointing(
    encoder: HubEncoder,
) -> None:
    from bioner.models.dropout import FastCPUDropout

    id2label = {0: "O", 1: "B-X", 2: "I-X"}
    assert isinstance(TokenClassifier(encoder, id2label).training_dropout(), FastCPUDropout)
    assert not isinstance(
        TokenClassifier(encoder, id2label, fast_dropout=False).training_dropout(), FastCPUDropout
    )
    # Checkpointing recomputes the forward pass in backward, outside the mode: masks would differ.
    checkpointed = TokenClassifier(
        encoder, id2label, gradient_checkpointing=True, fast_dropout=True
    )
    # Asked every training step: without transformers 5's deprecation warning of the old name.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert not isinstance(checkpointed.training_dropout(), FastCPUDropout)


class StepLosses(L.Callback):
    """Each training step's loss and whether the progress bar then read a host value."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.bar_on_host: list[bool | None] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.losses.append(float(outputs["loss"]))
        metric = trainer._results.get("training_step.train/loss")
        cached = None if metric is None else metric._forward_cache
        self.bar_on_host.append(None if cached is None else cached.is_cpu)


def test_training_loss_is_logged_on_the_steps_the_loggers_write(
    encoder: HubEncoder, datamodule: NERDataModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the steps of ``log_every_n_steps`` call ``self.log`` (each call costs host time),
    and the logger still writes each such step's own loss, as when every step logged."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    calls: list[str] = []
    log = L.LightningModule.log
    monkeypatch.setattr(
        TokenClassifier,
        "log",
        lambda self, name, *a, **k: calls.append(name) or log(self, name, *a, **k),
    )
    module = TokenClassifier(encoder, datamodule.id2label, lr=1e-3)
    losses = StepLosses()
    trainer = make_trainer(
        max_steps=7,
        limit_val_batches=0,
        log_every_n_steps=3,
        logger=CSVLogger(tmp_path, name="csv"),
        callbacks=[losses],
    )
    trainer.fit(module, datamodule=datamodule)
    trainer.loggers[0].save()
    assert calls.count("train/loss") == 2
    (metrics_csv,) = tmp_path.rglob("metrics.csv")
    rows = [r for r in csv.DictReader(metrics_csv.open()) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [2, 5]
    assert [float(r["train/loss"]) for r in rows] == pytest.approx(
        [losses.losses[2], losses.losses[5]], rel=1e-6
    )
    # What the progress bar reads at every step is a host copy (no wait for a GPU).
    assert losses.bar_on_host[2] is losses.bar_on_host[5] is True
    assert set(losses.bar_on_host) <= {None, True}


def test_the_summary_s_example_input_fits_an_encoder_shorter_than_128(tmp_path: Path) -> None:
    # Lightning's model summary runs example_input_array through forward: 128 sub-words broke
    # model=tiny model.max_position_embeddings=64 before its first step.
    from lightning.pytorch.utilities.model_summary import summarize

    from bioner.models.encoders import TinyBert

    encoder = TinyBert(cache_dir=str(tmp_path), max_position_embeddings=64)
    model = TokenClassifier(encoder, {0: "O", 1: "B-X", 2: "I-X"})
    assert model.example_input_array["input_ids"].shape == (1, 64)
    assert summarize(model).total_flops > 0
