"""Embedding-space adversaries: radii, masks, exactness at epsilon 0, and correct gradients under
accumulation, loss scaling and gradient checkpointing."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch

from bioner.attacks import FGM, FGSM, PGD, VAT, Adversary, FreeLB, Gradients, special_token_ids
from bioner.attacks.adversaries import token_divergence
from bioner.attacks.perturbation import (
    embedding_logits,
    embedding_loss,
    perturbable_mask,
    project,
    word_embeddings,
)
from bioner.data.alignment import Alignment
from bioner.data.datamodule import NERDataModule
from bioner.data.readers import IOBReader
from bioner.models.encoders import HubEncoder
from bioner.models.module import TokenClassifier, layer_logits


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> HubEncoder:
    return HubEncoder(str(tiny_model_dir), name="tiny")


@pytest.fixture(scope="module")
def datamodule(encoder: HubEncoder, fixtures_dir: Path) -> NERDataModule:
    reader = IOBReader(name="fixture", data_dir=fixtures_dir / "iob", entity_types=None)
    return NERDataModule(reader, Alignment(), encoder.load_tokenizer(), batch_size=4, seed=3)


@pytest.fixture(scope="module")
def batch(datamodule: NERDataModule) -> dict[str, torch.Tensor]:
    # The longest batch of the training split: padding and several sentence lengths.
    batches = list(datamodule.train_dataloader())
    return max(batches, key=lambda b: int((b["attention_mask"] == 0).sum()))


@pytest.fixture()
def model(encoder: HubEncoder, datamodule: NERDataModule) -> torch.nn.Module:
    torch.manual_seed(0)
    # No dropout: two forward passes of the same input give the same loss.
    return encoder.load_model(datamodule.id2label, dropout=0.0)


@pytest.fixture(scope="module")
def specials(datamodule: NERDataModule) -> list[int]:
    return special_token_ids(datamodule.tokenizer)


ATTACKS = {
    "fgsm": lambda: FGSM(epsilon=0.02),
    "fgm": lambda: FGM(epsilon=0.5),
    "pgd_linf": lambda: PGD(epsilon=0.02, steps=3, norm="linf"),
    "pgd_l2_random": lambda: PGD(epsilon=0.5, steps=3, norm="l2", random_start=True),
    "freelb": lambda: FreeLB(epsilon=0.5, steps=3),
    "vat": lambda: VAT(epsilon=0.5, xi=0.1),
}


def prepared(name: str, specials: list[int]) -> Adversary:
    adversary = ATTACKS[name]()
    adversary.special_ids = specials
    return adversary


def per_token_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    return delta.abs().amax(dim=-1) if norm == "linf" else delta.norm(dim=-1)


def param_grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_close(a: dict, b: dict, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_perturbation_stays_in_the_ball_and_off_special_tokens(
    name: str, model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    adversary = prepared(name, specials)
    real = batch["attention_mask"].bool() & ~torch.isin(batch["input_ids"], torch.tensor(specials))
    for delta in (
        adversary.attack(model, batch),
        adversary.training_loss(model, batch, Gradients()).delta,
    ):
        size = per_token_norm(delta, adversary.norm)
        assert (size <= adversary.epsilon * (1 + 1e-5)).all()
        assert (size[~real] == 0).all()  # [CLS], [SEP] and padding are never perturbed
        assert (size[real] > 0).all()
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", ["fgsm", "fgm", "pgd_linf", "pgd_l2_random"])
def test_the_attack_raises_the_loss(
    name: str, model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    adversary = prepared(name, specials)
    delta = adversary.attack(model, batch)
    with torch.no_grad():
        embeds = word_embeddings(model, batch["input_ids"])
        clean = embedding_loss(model, embeds, batch)
        attacked = embedding_loss(model, embeds + delta, batch)
        # A random perturbation of the same size raises it much less, if at all.
        noise = project(torch.randn_like(delta), adversary.epsilon, adversary.norm)
        noise = noise * (delta != 0).any(dim=-1, keepdim=True)
        random = embedding_loss(model, embeds + noise, batch)
    assert attacked > clean
    assert attacked - clean > 2 * (random - clean)


def test_more_pgd_steps_find_a_higher_loss(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    losses = []
    for steps in (1, 5):
        delta = PGD(epsilon=0.5, alpha=0.2, steps=steps, norm="l2").attack(
            model, batch, special_ids=specials
        )
        with torch.no_grad():
            losses.append(
                embedding_loss(model, word_embeddings(model, batch["input_ids"]) + delta, batch)
            )
    assert losses[1] > losses[0]


def test_pgd_with_one_step_of_epsilon_is_fgsm(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    fgsm = prepared("fgsm", specials)
    pgd = PGD(epsilon=fgsm.epsilon, alpha=fgsm.epsilon, steps=1, norm="linf")
    pgd.special_ids = specials
    assert torch.equal(fgsm.attack(model, batch), pgd.attack(model, batch))
    results = []
    for adversary in (fgsm, pgd):
        model.zero_grad(set_to_none=True)
        out = adversary.training_loss(model, batch, Gradients())
        out.loss.backward()
        results.append((out.delta, out.objective, param_grads(model)))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert_grads_close(results[0][2], results[1][2], rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_the_perturbation_never_touches_the_weights(
    name: str, model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    adversary = prepared(name, specials)
    before = copy.deepcopy(model.state_dict())
    adversary.attack(model, batch)
    # An attack for evaluation computes no parameter gradient, and leaves the weights as they were.
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # A training step moves every weight by its gradient and by nothing else: the perturbation
    # lives in the embedding *outputs*, never in the embedding matrix the optimiser updates.
    out = adversary.training_loss(model, batch, Gradients())
    out.loss.backward()
    params = dict(model.named_parameters())
    expected = {
        k: before[k] - p.grad.detach() if p.grad is not None else before[k]
        for k, p in params.items()
    }
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    for key, param in params.items():
        torch.testing.assert_close(param.detach(), expected[key], rtol=0, atol=0, msg=key)
    (embeddings,) = (k for k, p in params.items() if p is model.get_input_embeddings().weight)
    assert not torch.equal(params[embeddings].detach(), before[embeddings])  # the step moved it


def test_training_loss_is_clean_plus_weighted_adversarial(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    adversary = PGD(epsilon=0.5, steps=2, norm="l2", weight=0.5)
    adversary.special_ids = specials
    out = adversary.training_loss(model, batch, Gradients())
    out.loss.backward()
    got = param_grads(model)
    # By hand: the same perturbation, one backward of the whole objective.
    model.zero_grad(set_to_none=True)
    embeds = word_embeddings(model, batch["input_ids"])
    objective = embedding_loss(model, embeds, batch) + 0.5 * embedding_loss(
        model, embeds + out.delta, batch
    )
    objective.backward()
    torch.testing.assert_close(out.objective, objective.detach())
    assert out.adversarial > out.clean
    assert_grads_close(got, param_grads(model))


def test_freelb_averages_the_gradients_of_its_passes(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    freelb = FreeLB(epsilon=0.5, alpha=0.3, steps=2)
    freelb.special_ids = specials
    out = freelb.training_loss(model, batch, Gradients())
    out.loss.backward()
    got = param_grads(model)
    # Its second pass trains on the FGM-like step from zero: alpha along the normalised gradient.
    step = PGD(epsilon=0.5, alpha=0.3, steps=1, norm="l2").attack(
        model, batch, special_ids=specials
    )
    torch.testing.assert_close(out.delta, step)
    model.zero_grad(set_to_none=True)
    embeds = word_embeddings(model, batch["input_ids"])
    mean = (embedding_loss(model, embeds, batch) + embedding_loss(model, embeds + step, batch)) / 2
    mean.backward()
    torch.testing.assert_close(out.objective, mean.detach())
    assert_grads_close(got, param_grads(model))
    # One pass is plain clean training.
    model.zero_grad(set_to_none=True)
    single = FreeLB(epsilon=0.5, steps=1)
    single.special_ids = specials
    one = single.training_loss(model, batch, Gradients())
    torch.testing.assert_close(one.loss, embedding_loss(model, embeds.detach(), batch))


def test_vat_trains_on_clean_loss_plus_the_divergence_its_direction_raises(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    vat = VAT(epsilon=0.5, xi=0.1, weight=0.5)
    vat.special_ids = specials
    torch.manual_seed(0)
    out = vat.training_loss(model, batch, Gradients())
    out.loss.backward()
    got = param_grads(model)
    # By hand: the same perturbation, one backward of clean loss + weight * KL(clean || perturbed).
    model.zero_grad(set_to_none=True)
    mask = perturbable_mask(batch["input_ids"], batch["attention_mask"], specials)
    embeds = word_embeddings(model, batch["input_ids"])
    logits = embedding_logits(model, embeds, batch)
    divergence = token_divergence(logits, embedding_logits(model, embeds + out.delta, batch), mask)
    objective = embedding_loss(model, embeds, batch) + 0.5 * divergence
    objective.backward()
    torch.testing.assert_close(out.objective, objective.detach())
    torch.testing.assert_close(out.adversarial, divergence.detach())
    assert_grads_close(got, param_grads(model))
    # Its direction changes the predictions far more than random ones of the same radius.
    with torch.no_grad():
        reference = logits.detach()
        found = token_divergence(
            reference, embedding_logits(model, embeds + out.delta, batch), mask
        )
        for seed in range(3):
            torch.manual_seed(seed)
            noise = project(torch.randn_like(out.delta) * 10, 0.5, "l2") * mask
            random = token_divergence(
                reference, embedding_logits(model, embeds + noise, batch), mask
            )
            assert found > 2 * random


def test_vat_reads_no_labels(model: torch.nn.Module, batch: dict, specials: list[int]) -> None:
    vat = VAT(epsilon=0.5, xi=0.1)
    vat.special_ids = specials
    torch.manual_seed(0)
    gold = vat.training_loss(model, batch, Gradients())
    labels = batch["labels"]
    other = {**batch, "labels": torch.where(labels == -100, labels, (labels + 1) % 3)}
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    out = vat.training_loss(model, other, Gradients())
    # Other labels change the clean loss, not the perturbation or its divergence.
    assert out.clean != gold.clean
    torch.testing.assert_close(out.delta, gold.delta)
    torch.testing.assert_close(out.adversarial, gold.adversarial)
    assert out.adversarial > 0


def test_vat_learns_from_rows_without_labels_through_the_divergence_alone(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    vat = VAT(epsilon=0.5, xi=0.1)
    vat.special_ids = specials
    rows = batch["input_ids"].shape[0]
    unlabelled = torch.arange(rows) >= rows // 2  # as the collator leaves unlabelled text
    mixed = {**batch, "labels": batch["labels"].masked_fill(unlabelled[:, None], -100)}
    torch.manual_seed(0)
    out = vat.training_loss(model, mixed, Gradients())
    # The cross-entropy is that of the labelled rows alone ...
    labelled = {k: v[~unlabelled] for k, v in batch.items()}
    with torch.no_grad():
        clean = embedding_loss(model, word_embeddings(model, labelled["input_ids"]), labelled)
    torch.testing.assert_close(out.clean, clean)
    # ... and the divergence is of every row, the unlabelled ones perturbed too.
    mask = perturbable_mask(batch["input_ids"], batch["attention_mask"], specials)
    assert out.delta[unlabelled].norm(dim=-1)[mask[unlabelled, :, 0] > 0].min() > 0.49
    with torch.no_grad():
        embeds = word_embeddings(model, batch["input_ids"])
        reference = embedding_logits(model, embeds, batch)
        perturbed = embedding_logits(model, embeds + out.delta, batch)
    torch.testing.assert_close(out.adversarial, token_divergence(reference, perturbed, mask))
    assert out.adversarial != token_divergence(
        reference[~unlabelled], perturbed[~unlabelled], mask[~unlabelled]
    )


def test_vat_settings_and_the_multilabel_head(datamodule: NERDataModule) -> None:
    for setting, message in (
        ({"xi": 0.0}, "xi must be positive"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"unlabeled_ratio": 0.0}, "unlabeled_ratio must be positive"),
        ({"unlabeled_format": "docx"}, "unlabeled_format must be one of auto, lines"),
    ):
        with pytest.raises(ValueError, match=message):
            VAT(epsilon=0.5, **setting)


def test_vat_sums_the_divergences_of_the_multilabel_heads_layers(
    model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    # The fixture's 5 outputs read as two layers (Chemical: 1, 2; Disease: 3, 4) beside O.
    layers = torch.tensor([[1, 2], [3, 4]])
    vat = VAT(epsilon=0.5, xi=0.1)
    vat.special_ids = specials
    vat.distributions = lambda logits: layer_logits(logits, layers)
    torch.manual_seed(0)
    out = vat.training_loss(model, batch, Gradients())
    mask = perturbable_mask(batch["input_ids"], batch["attention_mask"], specials)
    with torch.no_grad():
        embeds = word_embeddings(model, batch["input_ids"])
        clean = embedding_logits(model, embeds, batch)
        perturbed = embedding_logits(model, embeds + out.delta, batch)

    def layer(logits: torch.Tensor, cols: list[int]) -> torch.Tensor:  # O's logit fixed at 0
        return torch.cat([torch.zeros_like(logits[..., :1]), logits[..., cols]], dim=-1)

    expected = sum(
        token_divergence(layer(clean, cols), layer(perturbed, cols), mask)
        for cols in layers.tolist()
    )
    torch.testing.assert_close(out.adversarial, expected)
    assert out.adversarial > 0


@pytest.mark.parametrize("name", ["pgd_linf", "vat"])
def test_accumulation_and_loss_scaling_match_the_trainer(
    name: str, model: torch.nn.Module, batch: dict, specials: list[int]
) -> None:
    adversary = prepared(name, specials)
    torch.manual_seed(0)  # VAT's random probe
    out = adversary.training_loss(model, batch, Gradients())
    out.loss.backward()
    plain = param_grads(model)
    # accumulate=4 under a loss scale of 2**12: the trainer divides and scales the returned loss,
    # the adversary must do the same for its own passes; unscaled, the sum is plain / 4.
    model.zero_grad(set_to_none=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    gradients = Gradients(accumulate=4, scaler=scaler)
    torch.manual_seed(0)
    out = adversary.training_loss(model, batch, gradients)
    scaler.scale(out.loss / 4).backward()
    scaled = {k: v / 2.0**12 for k, v in param_grads(model).items()}
    assert_grads_close(scaled, {k: v / 4 for k, v in plain.items()})


def test_gradient_checkpointing_gives_the_same_gradients(
    encoder: HubEncoder, datamodule: NERDataModule, batch: dict, specials: list[int]
) -> None:
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = encoder.load_model(
            datamodule.id2label, dropout=0.0, gradient_checkpointing=checkpointing
        )
        model.train()  # checkpointing is only active in training mode
        adversary = prepared("pgd_l2_random", specials)
        torch.manual_seed(1)  # the same random start
        adversary.training_loss(model, batch, Gradients()).loss.backward()
        grads.append(param_grads(model))
    assert_grads_close(*grads)


def test_epsilon_schedule() -> None:
    adversary = FGM(epsilon=0.4, warmup_epochs=1, ramp_epochs=2)
    assert [adversary.epsilon_at(e) for e in (0, 0.99, 1, 2, 3, 5)] == pytest.approx(
        [0, 0, 0, 0.2, 0.4, 0.4]
    )
    assert FGM(epsilon=0.4).epsilon_at(0) == 0.4
    with pytest.raises(ValueError, match="must be >= 0"):
        FGSM(epsilon=-1)
    with pytest.raises(ValueError, match="norm must be one of"):
        PGD(epsilon=1, norm="l1")


# ---------------------------------------------------------------------- through Lightning


def fit(
    encoder: HubEncoder,
    datamodule: NERDataModule,
    adversary: Adversary | None,
    steps: int = 4,
    **trainer_kwargs,
) -> TokenClassifier:
    L.seed_everything(7)
    module = TokenClassifier(encoder, datamodule.id2label, lr=1e-3, warmup_ratio=0.0)
    callbacks = [adversary] if adversary is not None else []
    settings = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        max_steps=steps,
        precision="32-true",
        deterministic=True,
    )
    trainer = L.Trainer(callbacks=callbacks, **{**settings, **trainer_kwargs})
    trainer.fit(module, datamodule=datamodule)
    return module


def test_epsilon_zero_is_clean_training_bit_for_bit(
    encoder: HubEncoder, datamodule: NERDataModule
) -> None:
    clean = fit(encoder, datamodule, None).state_dict()
    for adversary in (PGD(epsilon=0.0, random_start=True), FGSM(epsilon=0.02, warmup_epochs=9)):
        module = fit(encoder, datamodule, adversary)
        assert module.adversary is None  # unregistered after fit
        state = module.state_dict()
        assert all(torch.equal(clean[k], state[k]) for k in clean)
    attacked = fit(encoder, datamodule, FGSM(epsilon=0.02)).state_dict()
    assert not all(torch.equal(clean[k], attacked[k]) for k in clean)


class GradientProbe(L.Callback):
    """Keeps the first optimiser step's batches and accumulated gradients."""

    def __init__(self) -> None:
        self.batches: list[dict] = []
        self.grads: dict[str, torch.Tensor] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if self.grads is None:
            self.batches.append({k: v.clone() for k, v in batch.items()})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
        if self.grads is None:
            self.grads = {
                n: p.grad.detach().clone()
                for n, p in pl_module.model.named_parameters()
                if p.grad is not None
            }


@pytest.mark.parametrize("name", ["fgm", "freelb"])
def test_gradient_accumulation_in_lightning(
    name: str, encoder: HubEncoder, datamodule: NERDataModule, specials: list[int]
) -> None:
    datamodule = NERDataModule(datamodule.reader, Alignment(), datamodule.tokenizer, batch_size=2)
    L.seed_everything(7)
    module = TokenClassifier(encoder, datamodule.id2label, lr=1e-3, dropout=0.0)
    start = copy.deepcopy(module.model)
    probe = GradientProbe()
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        max_steps=1,
        accumulate_grad_batches=2,
        callbacks=[prepared(name, specials), probe],
    )
    trainer.fit(module, datamodule=datamodule)
    assert len(probe.batches) == 2
    adversary = prepared(name, specials)
    for b in probe.batches:
        out = adversary.training_loss(start, b, Gradients(accumulate=2))
        (out.loss / 2).backward()
    assert_grads_close(probe.grads, param_grads(start))


def test_bf16_mixed_training_under_attack(encoder: HubEncoder, datamodule: NERDataModule) -> None:
    module = fit(encoder, datamodule, PGD(epsilon=0.3, steps=2), precision="bf16-mixed")
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_attacks_need_the_token_classifier(datamodule: NERDataModule) -> None:
    class Plain(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 2)

    trainer = L.Trainer(accelerator="cpu", logger=False, max_steps=1)
    with pytest.raises(TypeError, match="asks its adversary"):
        FGSM(epsilon=0.1).setup(trainer, Plain(), "fit")
