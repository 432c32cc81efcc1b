"""The crf head: allowed transitions, Viterbi and marginals against brute force, the training loss
against brute force, and the head inside TokenClassifier, decoding, attacks and records."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from bioner.attacks.adversaries import FGSM, PGD
from bioner.data.alignment import Alignment, Transitions
from bioner.data.alignment.crf import allowed_transitions
from bioner.data.batching import unannotated_table
from bioner.data.datamodule import NERDataModule
from bioner.data.readers import IOBReader
from bioner.data.tags import label_list, tags_to_word_spans
from bioner.errors import ConfigError
from bioner.models.adversarial import Gradients
from bioner.models.crf import CRF
from bioner.models.encoders import HubEncoder
from bioner.models.module import TokenClassifier
from bioner.models.partial import allowed_tags

IOB2 = label_list(["Chem", "Dis"], "IOB2")
IOBES = label_list(["Chem"], "IOBES")


def valid(tags: list[str], scheme: str) -> bool:
    """Whether ``tags`` is a sequence the scheme allows (its spans read back unchanged)."""
    _, repaired = tags_to_word_spans(tags, scheme, on_invalid="repair")
    return repaired == 0


def random_transitions(tags: list[str], seed: int) -> Transitions:
    rng = np.random.default_rng(seed)
    n = len(tags)
    return Transitions(tuple(tags), rng.normal(size=(n, n)), rng.normal(size=n), rng.normal(size=n))


def brute_force(trans: Transitions, emissions: np.ndarray, scheme: str):
    """Every allowed sequence's score: the best one and each word's tag marginals."""
    n, k = emissions.shape
    scores = {}
    for path in itertools.product(range(k), repeat=n):
        tags = [trans.tags[i] for i in path]
        if not valid(tags, scheme):
            continue
        score = trans.start[path[0]] + trans.end[path[-1]] + emissions[np.arange(n), path].sum()
        score += sum(trans.pairs[a, b] for a, b in zip(path, path[1:]))
        scores[path] = score
    values = np.array(list(scores.values()))
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    marginals = np.zeros((n, k))
    for p, path in zip(probs, scores):
        marginals[np.arange(n), path] += p
    return max(scores, key=scores.get), marginals


def test_allowed_transitions_follow_the_scheme() -> None:
    pairs, start, end = allowed_transitions(IOB2)
    at = {t: i for i, t in enumerate(IOB2)}
    assert not pairs[at["O"], at["I-Chem"]] and not pairs[at["B-Dis"], at["I-Chem"]]
    assert pairs[at["B-Chem"], at["I-Chem"]] and pairs[at["I-Chem"], at["I-Chem"]]
    assert pairs[at["I-Chem"], at["B-Chem"]] and pairs[at["O"], at["B-Dis"]]
    assert not start[at["I-Chem"]] and start[at["B-Chem"]] and end.all()
    pairs, start, end = allowed_transitions(IOBES)
    at = {t: i for i, t in enumerate(IOBES)}
    assert pairs[at["B-Chem"], at["E-Chem"]] and not pairs[at["B-Chem"], at["O"]]
    assert not pairs[at["S-Chem"], at["I-Chem"]] and pairs[at["E-Chem"], at["S-Chem"]]
    assert not end[at["B-Chem"]] and not end[at["I-Chem"]] and end[at["S-Chem"]]
    assert not start[at["E-Chem"]] and start[at["S-Chem"]]


@pytest.mark.parametrize(("tags", "scheme"), [(IOB2, "IOB2"), (IOBES, "IOBES")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_and_marginals_equal_brute_force(tags: list[str], scheme: str, seed: int) -> None:
    trans = random_transitions(tags, seed)
    emissions = np.random.default_rng(seed + 10).normal(scale=2.0, size=(4, len(tags)))
    path, confidence = trans.decode(emissions)
    best, marginals = brute_force(trans, emissions, scheme)
    assert tuple(path) == best
    np.testing.assert_allclose(confidence, marginals[np.arange(4), path], rtol=1e-9)


def test_decoding_never_breaks_the_scheme() -> None:
    # Emissions that favour an I- after O, and an I- of another type, everywhere.
    trans = Transitions(tuple(IOB2), np.zeros((5, 5)), np.zeros(5), np.zeros(5))
    rng = np.random.default_rng(0)
    for _ in range(50):
        emissions = rng.normal(size=(7, 5))
        emissions[:, [2, 4]] += 2.0  # I-Chem, I-Dis
        path, _ = trans.decode(emissions)
        assert valid([IOB2[i] for i in path], "IOB2")
    assert trans.decode(np.zeros((0, 5)))[0].shape == (0,)


def brute_nll(
    crf: CRF, logits: torch.Tensor, labels: torch.Tensor, unannotated: torch.Tensor | None = None
) -> float:
    """-log p(gold chain) summed over rows, over all tag sequences of each row's chain (forbidden
    pairs at the training penalty, start and end free), divided by the chain positions. With
    ``unannotated`` (partial annotation), -log of the summed probability of every sequence the
    partial labels allow (bioner.models.partial.allowed_tags)."""
    pairs = crf.transitions.masked_fill(~crf.allowed, -10_000.0).double()
    total, count = 0.0, 0
    for row in range(len(labels)):
        pos = (labels[row] != -100).nonzero().flatten()
        if not len(pos):
            continue
        em = logits[row, pos].double()
        gold = labels[row, pos].tolist()

        def score(path, em=em) -> torch.Tensor:
            s = crf.start[path[0]].double() + crf.end[path[-1]].double()
            s = s + em[torch.arange(len(path)), list(path)].sum()
            return s + sum(pairs[a, b] for a, b in zip(path, path[1:]))

        paths = list(itertools.product(range(len(crf.tags)), repeat=len(pos)))
        log_z = torch.logsumexp(torch.stack([score(p) for p in paths]), dim=0)
        if unannotated is None:
            log_gold = score(gold)
        else:
            allowed = allowed_tags(labels[row : row + 1, pos], unannotated[row : row + 1])[0]
            kept = [p for p in paths if all(allowed[i, t] for i, t in enumerate(p))]
            log_gold = torch.logsumexp(torch.stack([score(p) for p in kept]), dim=0)
        total += float((log_z - log_gold).detach())
        count += len(pos)
    return total / count


@pytest.fixture
def random_crf() -> CRF:
    """A CRF over IOB2 with seeded random scores (the losses below are checked by enumeration)."""
    torch.manual_seed(0)
    crf = CRF(IOB2)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def test_nll_equals_brute_force_over_the_labelled_chain(random_crf: CRF) -> None:
    crf = random_crf
    logits = torch.randn(3, 7, len(IOB2))
    labels = torch.full((3, 7), -100)
    labels[0, [1, 2, 4, 5]] = torch.tensor([1, 2, 0, 3])  # special and continuation sub-words off
    labels[1, [1, 3, 6]] = torch.tensor([3, 4, 4])
    # Row 2 has no labelled sub-word: it adds nothing.
    loss = crf.nll(logits, labels)
    assert loss.item() == pytest.approx(brute_nll(crf, logits, labels), rel=1e-5)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in crf.parameters())
    assert crf.nll(logits, torch.full((3, 7), -100)).item() == 0.0


def test_partial_nll_marginalises_over_the_sequences_the_labels_allow(random_crf: CRF) -> None:
    crf = random_crf
    logits = torch.randn(2, 6, len(IOB2))
    labels = torch.full((2, 6), -100)
    labels[0, [1, 2, 3, 4]] = torch.tensor([0, 0, 3, 0])  # a Dis corpus: its O may be Chem
    labels[1, [1, 3, 4]] = torch.tensor([1, 2, 0])  # fully annotated
    unannotated = torch.tensor(unannotated_table(IOB2, [("Dis",)]))[[1, 0]]
    loss = crf.nll(logits, labels, unannotated)
    assert loss.item() == pytest.approx(brute_nll(crf, logits, labels, unannotated), rel=1e-5)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in crf.parameters())
    # With every type annotated it is the gold path's loss.
    none = torch.zeros_like(unannotated)
    assert crf.nll(logits, labels, none).item() == pytest.approx(
        crf.nll(logits, labels).item(), rel=1e-5
    )


def test_nll_runs_in_fp32_under_bf16_autocast() -> None:
    crf = CRF(IOB2)
    logits = torch.randn(2, 40, len(IOB2), dtype=torch.bfloat16)
    labels = torch.zeros(2, 40, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = crf.nll(logits, labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_record_round_trip_and_refusals() -> None:
    trans = random_transitions(IOB2, 3)
    id2label = dict(enumerate(IOB2))
    again = Transitions.from_record(trans.record(), "bioner.json", id2label)
    np.testing.assert_array_equal(again.pairs, trans.pairs)
    np.testing.assert_array_equal(again.end, trans.end)
    with pytest.raises(ConfigError, match="not the model's labels"):
        Transitions.from_record(trans.record(), "x/bioner.json", dict(enumerate(IOB2[::-1])))
    bad = {**trans.record(), "start": [0.0, 1.0]}
    with pytest.raises(ConfigError, match=r"x/bioner.json: 'crf' is not a CRF record \(CRF start"):
        Transitions.from_record(bad, "x/bioner.json", id2label)
    with pytest.raises(ConfigError, match="finite"):
        Transitions.from_record({**trans.record(), "end": [float("nan")] * 5}, "x", id2label)
    with pytest.raises(ConfigError, match="'tags', 'transitions'"):
        Transitions.from_record({"tags": IOB2}, "x", id2label)
    with pytest.raises(ConfigError, match="'tags', 'transitions'"):
        Transitions.from_record({**trans.record(), "tags": 5}, "x", id2label)


def test_alignment_refuses_strategies_the_crf_cannot_chain() -> None:
    with pytest.raises(ValueError, match="use alignment=first or alignment=last"):
        Alignment(label_strategy="all", decode="mean", head="crf")
    with pytest.raises(ValueError, match="use alignment=first or alignment=last"):
        Alignment(label_strategy="first", decode="mean", head="crf")
    assert Alignment(label_strategy="last", decode="last", head="crf").head == "crf"


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> HubEncoder:
    return HubEncoder(str(tiny_model_dir), name="tiny")


@pytest.fixture()
def datamodule(encoder: HubEncoder, fixtures_dir: Path) -> NERDataModule:
    reader = IOBReader(name="fixture", data_dir=fixtures_dir / "iob", entity_types=None)
    return NERDataModule(reader, Alignment(head="crf"), encoder.load_tokenizer(), batch_size=4)


def test_module_trains_the_crf_and_decodes_with_its_transitions(
    encoder: HubEncoder, datamodule: NERDataModule
) -> None:
    module = TokenClassifier(encoder, datamodule.id2label, head="crf", lr=1e-3)
    groups = {g["name"]: g for g in module.parameter_groups()}
    assert groups["crf"]["lr"] == pytest.approx(0.1) and groups["crf"]["weight_decay"] == 0.0
    assert {id(p) for p in groups["crf"]["params"]} == {id(p) for p in module.crf.parameters()}
    train = datamodule.encoded("train")
    batch = datamodule.collator([train[i] for i in range(len(train))])
    module.eval()  # no dropout: the step's loss is the CRF's of the same logits
    loss = module.training_step(batch, 0)
    logits = module(batch["input_ids"], batch["attention_mask"])
    assert loss.item() == pytest.approx(module.crf.nll(logits, batch["labels"]).item(), rel=1e-5)
    loss.backward()
    assert module.crf.transitions.grad is not None and module.crf.transitions.grad.abs().sum() > 0
    # Decoding: emissions that favour I- tags alone still give valid spans, and differ from the
    # pipeline's argmax reading, which the argmax rule reproduces.
    split = datamodule.encoded("test")
    labels = datamodule.id2label
    rng = np.random.default_rng(0)
    raw = {}
    for i, f in enumerate(split.features):
        z = rng.normal(size=(len(f.input_ids), len(labels)))
        z[:, [k for k, v in labels.items() if v.startswith("I-")]] += 3.0
        raw[i] = z
    with pytest.raises(ValueError, match="pass transitions"):
        split.decode(raw, labels)
    docs, preds = split.decode(raw, labels, module.transitions())
    assert sum(map(len, preds)) > 0
    assert all(0 < s.score <= 1 for spans in preds for s in spans)
    assert len(docs) == len(split.docs)
    crf, pipeline = split.alignment, split.alignment.replace(decode_rule="argmax")
    flat = Alignment(head="flat", decode_rule="argmax")
    differs = False
    for d, (doc, spans) in enumerate(zip(docs, preds)):
        idx = [i for i, owner in enumerate(split.doc_index) if owner == d]
        features, rows = [split.features[i] for i in idx], [raw[i] for i in idx]
        assert crf.decode(doc, features, rows, labels, module.transitions()) == spans
        # The argmax rule ignores the transitions: the flat head's reading, as the pipeline's.
        as_pipeline = pipeline.decode(doc, features, rows, labels)
        assert as_pipeline == flat.decode(doc, features, rows, labels)
        differs |= [(s.start, s.end, s.label) for s in as_pipeline] != [
            (s.start, s.end, s.label) for s in spans
        ]
    assert differs


@pytest.mark.parametrize("attack", [FGSM(epsilon=0.1), PGD(epsilon=0.1, steps=2)])
@pytest.mark.parametrize("head", ["crf", "multilabel"])
def test_attacks_raise_the_head_loss(
    encoder: HubEncoder, fixtures_dir: Path, attack, head: str
) -> None:
    reader = IOBReader(name="fixture", data_dir=fixtures_dir / "iob", entity_types=None)
    datamodule = NERDataModule(reader, Alignment(head=head), encoder.load_tokenizer(), batch_size=4)
    module = TokenClassifier(encoder, datamodule.id2label, head=head)
    module.eval()  # no dropout: the clean loss is the module's own
    train = datamodule.encoded("train")
    batch = datamodule.collator([train[i] for i in range(len(train))])
    attack.head_loss = module.head_loss
    step = attack.training_loss(module.model, batch, Gradients())
    _, clean = module._forward(batch)
    assert step.clean.item() == pytest.approx(clean.item(), rel=1e-5)
    assert step.adversarial.item() > step.clean.item()
    delta = attack.attack(module.model, batch, 0.1, head_loss=module.head_loss)
    assert delta.abs().sum() > 0


def test_tagger_load_reads_the_transitions_as_numbers_and_needs_them(
    encoder: HubEncoder, tmp_path: Path
) -> None:
    from bioner.inference import Tagger
    from bioner.inference.export import export_pretrained

    id2label = dict(enumerate(IOB2))
    model = encoder.load_model(id2label)
    meta = {
        "alignment": {"label_strategy": "first", "decode": "first", "head": "crf"},
        "entity_types": ["Chem", "Dis"],
    }
    export_pretrained(model, encoder.load_tokenizer(), tmp_path / "bare", meta)
    with pytest.raises(ConfigError, match=r"bare/bioner.json: the model has a crf head but no"):
        Tagger.load(tmp_path / "bare", device="cpu")
    trans = random_transitions(IOB2, 4)
    meta["crf"] = trans.record()
    export_pretrained(model, encoder.load_tokenizer(), tmp_path / "crf", meta)
    tokenizer = encoder.load_tokenizer()
    with pytest.raises(ConfigError, match="a crf head decodes with its learned transitions"):
        Tagger([(model, tokenizer, Alignment(head="crf"))], device="cpu")
    tagger = Tagger.load(tmp_path / "crf", device="cpu")
    np.testing.assert_array_equal(tagger.members[0].transitions.pairs, trans.pairs)
    spans = tagger.predict("Aspirin reduces fever in patients with Diabetes .")
    assert all(0 <= s.start < s.end for s in spans)


def test_marginals_survive_emissions_far_apart() -> None:
    # Word 0 is surely O and word 1 surely I-Chem, which may not follow O: every allowed
    # sequence is astronomically unlikely, and probability space underflows to 0 / 0.
    trans = random_transitions(IOB2, 5)
    emissions = np.full((3, 5), -2000.0)
    emissions[0, 0] = emissions[1, 2] = emissions[2, 0] = 0.0
    path, confidence = trans.decode(emissions)
    best, marginals = brute_force(trans, emissions, "IOB2")
    assert tuple(path) == best and np.isfinite(confidence).all()
    np.testing.assert_allclose(confidence, marginals[np.arange(3), path], rtol=1e-9)
