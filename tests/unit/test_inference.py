"""Tagger: loading exported and run folders, exact offsets on tricky text, windows, batching and
chunking that never change a prediction, several models, documents."""

from __future__ import annotations

import json
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bioner.data.alignment import Alignment
from bioner.data.document import Document, Span
from bioner.data.tokenize import word_ranges
from bioner.errors import ConfigError
from bioner.inference import Tagger
from bioner.inference.export import export_pretrained
from bioner.inference.tagger import make_document, model_folder
from bioner.models.encoders import HubEncoder
from bioner.postprocess import OverlapResolver

TYPES = ["Chemical", "Disease"]


def export_tiny(
    tiny_model_dir: Path, folder: Path, types: list[str] = TYPES, seed: int = 0, **alignment
) -> Path:
    """The tiny BERT with a confident random head, exported as bioner-train exports a model."""
    settings = {"label_strategy": "first", "decode": "first", "scheme": "IOB2"}
    settings.update({"max_length": None, "stride": 128, "unit": "sentence"}, **alignment)
    labels = Alignment(**settings).labels(types)
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    model = encoder.load_model(dict(enumerate(labels)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # A random head at the default scale predicts every label about equally; a wide one
        # gives confident, varied predictions, so spans start and end everywhere.
        torch.nn.init.normal_(model.classifier.weight, std=2.0)
    metadata = {
        "alignment": {"_target_": "bioner.data.alignment.Alignment", **settings},
        "entity_types": types,
        "dataset": "test",
        "encoder": "tiny",
    }
    return export_pretrained(model, encoder.load_tokenizer(), folder, metadata)


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory) -> Path:
    return export_tiny(tiny_model_dir, tmp_path_factory.mktemp("export") / "model")


@pytest.fixture(scope="module")
def tagger(exported: Path) -> Tagger:
    return Tagger.load(exported, device="cpu")


TRICKY = [
    "Na+/K+-ATPase",
    "α-synuclein",
    "e\u0301",  # e + combining acute accent
    "\u200b",  # zero-width space (not whitespace, no sub-words)
    "😀",
    "中文字",
    "İstanbul",  # lower-cases to two characters
    "ﬁbrosis",  # a ligature NFKC splits
    "5-HT6",
    "Dr.",
    "(n = 5).",
    "\t",
    "\r\n",
    "\n\n",
    "  ",
    "\u00a0",
    "\u2028",
    "[SEP]",
    "cisplatin",
    "Renal",
    "failure.",
    "The",
]


def random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        pieces = [rng.choice(TRICKY) for _ in range(rng.randint(0, 40))]
        texts.append("".join(p + rng.choice(["", " ", " ", "  "]) for p in pieces))
    return texts


def check_offsets(text: str, spans: list[Span]) -> None:
    words = word_ranges(text)
    starts, ends = {s for s, _ in words}, {e for _, e in words}
    for s in spans:
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start : s.end] == s.text(text)
        assert s.start in starts and s.end in ends  # whole words, never whitespace at the edges
        assert s.label in TYPES and s.score is not None and 0.0 <= s.score <= 1.0
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_offsets_index_the_original_text_exactly(tagger: Tagger) -> None:
    texts = random_texts(60, seed=0)
    predictions = tagger.predict(texts)
    assert len(predictions) == len(texts)
    for text, spans in zip(texts, predictions):
        check_offsets(text, spans)
    # The wide random head makes predictions on most texts (so the checks above bite).
    assert sum(bool(p) for p in predictions) > 40


def test_batching_and_chunking_never_change_predictions(exported: Path, tagger: Tagger) -> None:
    texts = random_texts(25, seed=1)
    reference = tagger.predict(texts)
    for kwargs in ({"batch_size": 1}, {"batch_size": 3, "chunk_chars": 50}, {"max_tokens": 40}):
        other = Tagger.load(exported, device="cpu", **kwargs)
        got = other.predict(texts)
        assert got == reference
        for a, b in zip(got, reference):
            assert np.allclose([s.score for s in a], [s.score for s in b], atol=1e-4)


def test_predictions_equal_a_direct_forward_pass(exported: Path, tagger: Tagger) -> None:
    """The tagger's spans are those of the model run on each document alone, decoded."""
    member = tagger.members[0]
    texts = ["Cisplatin-induced renal failure.  The (n = 5) rats. α-synuclein rose!", ""]
    for text, spans in zip(texts, tagger.predict(texts)):
        doc = make_document(text)
        features = member.alignment.encode(doc, member.tokenizer)
        logits = []
        with torch.no_grad():
            for f in features:
                out = member.model(input_ids=torch.tensor([f.input_ids])).logits[0].numpy()
                logits.append(out)
        expected = (
            member.alignment.decode(doc, features, logits, member.id2label) if features else []
        )
        assert spans == expected
        assert [s.score for s in spans] == pytest.approx([s.score for s in expected], abs=1e-5)


def test_long_documents_are_windowed_not_truncated(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = export_tiny(tiny_model_dir, tmp_path / "m", max_length=16, stride=5)
    words = [f"w{i}ord" if i % 7 else "cisplatin" for i in range(400)]
    text = " ".join(words)  # one sentence of ~800 sub-words: dozens of windows
    for unit in ("sentence", "document"):
        meta = json.loads((folder / "bioner.json").read_text())
        meta["alignment"]["unit"] = unit
        (folder / "bioner.json").write_text(json.dumps(meta))
        tagger = Tagger.load(folder, device="cpu")
        member = tagger.members[0]
        assert len(member.alignment.encode(make_document(text), member.tokenizer)) > 20
        [spans] = tagger.predict([text])
        check_offsets(text, spans)
        assert spans and spans[-1].end > len(text) - 50  # the end of the text is tagged too


def test_predict_documents_keeps_the_documents_own_words(tagger: Tagger) -> None:
    texts = ["Naloxone reverses clonidine-induced hypotension.", "DA1 receptors."]
    raw = [make_document(t, str(i)) for i, t in enumerate(texts)]
    by_documents, by_text = tagger.predict_documents(raw), tagger.predict(texts)
    assert by_documents == by_text and any(by_text)
    # The same spans, scores included: nothing is converted on the way.
    assert [[s.score for s in d] for d in by_documents] == [[s.score for s in d] for d in by_text]
    # Text-only documents get words; documents with (finer) words are encoded as they are.
    text_only = [Document(d.id, d.text) for d in raw]
    assert tagger.predict_documents(text_only) == tagger.predict_documents(raw)
    finer = make_document("DA1 receptors.")
    finer.words = [(0, 2), (2, 3), (4, 13), (13, 14)]
    [spans] = tagger.predict_documents([finer])
    assert all(s.start in {0, 2, 4, 13} and s.end in {2, 3, 13, 14} for s in spans)
    assert all(isinstance(s, Span) for s in spans)


def test_several_models_are_pooled_then_postprocessed(
    tiny_model_dir: Path, tmp_path: Path, exported: Path
) -> None:
    chem = export_tiny(tiny_model_dir, tmp_path / "chem", types=["Chemical"], seed=1)
    dis = export_tiny(tiny_model_dir, tmp_path / "dis", types=["Disease"], seed=2)
    texts = random_texts(15, seed=3)
    pooled = Tagger.load([chem, dis], device="cpu").predict(texts)
    alone = [Tagger.load(f, device="cpu").predict(texts) for f in (chem, dis)]
    for i, spans in enumerate(pooled):
        assert sorted(spans, key=lambda s: (s.start, s.label)) == sorted(
            alone[0][i] + alone[1][i], key=lambda s: (s.start, s.label)
        )
    assert any(a.overlaps(b) for d in pooled for a, b in zip(d, d[1:]))  # they do collide
    resolved = Tagger.load([chem, dis], device="cpu", postprocess=[OverlapResolver()]).predict(
        texts
    )
    for spans in resolved:
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_loading_run_folders_and_bad_folders(exported: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="stopped before exporting"):
        model_folder(run)
    (run / "model").symlink_to(exported)
    assert model_folder(run) == run / "model"
    assert Tagger.load(run, device="cpu").predict(["Naloxone."]) == Tagger.load(
        exported, device="cpu"
    ).predict(["Naloxone."])


def test_entity_types_are_those_of_every_model(tagger: Tagger) -> None:
    assert tagger.entity_types == sorted(TYPES)


def test_predict_takes_one_text_or_a_list(exported: Path) -> None:
    tagger = Tagger.load(exported, device="cpu")
    texts = ["Naloxone reverses hypotension.", "Cisplatin induced nephrotoxicity."]
    one = tagger.predict(texts[1])
    assert one and all(isinstance(s, Span) and s.score is not None for s in one)
    assert one == tagger.predict(texts)[1]
    assert tagger.predict(t for t in texts) == tagger.predict(texts)


def test_export_records_are_checked(exported: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    meta = json.loads((copy / "bioner.json").read_text())
    meta["entity_types"] = ["Gene"]
    (copy / "bioner.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="mixes files of different runs"):
        Tagger.load(copy, device="cpu")
    (copy / "bioner.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tagger = Tagger.load(copy, device="cpu")
    assert any("no bioner.json" in str(w.message) for w in caught)
    assert tagger.members[0].alignment.scheme == "IOB2"
    # A model from elsewhere whose labels are not tags (LABEL_0 ..., as the hub has some) is
    # one message, not a ValueError traceback at its first sentence.
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {k: f"LABEL_{k}" for k in config["id2label"]}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"labels of its config.json \('LABEL_0', .* not tags"):
        Tagger.load(copy, device="cpu")


def test_auto_precision_is_the_runs_where_the_hardware_has_it(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from bioner.utils import precision as precision_module

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    meta = json.loads((copy / "bioner.json").read_text())
    assert "precision" not in meta  # as in folders exported before it was recorded: fp32
    assert Tagger.load(copy, device="cpu").members[0].precision == "32"
    for trained, native, expected in [
        ("32-true", True, "32"),
        ("bf16-mixed", False, "32"),
        ("bf16-mixed", True, "bf16"),
    ]:
        monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda native=native: native)
        (copy / "bioner.json").write_text(json.dumps({**meta, "precision": trained}))
        assert Tagger.load(copy, device="cpu").members[0].precision == expected, trained
    auto = Tagger.load(copy, device="cpu")
    exact = Tagger.load(copy, device="cpu", precision="32")
    assert exact.members[0].precision == "32"  # asked for: kept
    # auto tags under bf16 autocast: the spans and scores of precision=bf16, not fp32's scores.
    texts = random_texts(20, seed=4)
    ours, bf16 = (
        auto.predict(texts),
        Tagger.load(copy, device="cpu", precision="bf16").predict(texts),
    )
    assert ours == bf16
    assert [s.score for d in ours for s in d] == [s.score for d in bf16 for s in d]
    fp32 = [{s: s.score for s in d} for d in exact.predict(texts)]
    deltas = [abs(s.score - fp32[i][s]) for i, d in enumerate(ours) for s in d if s in fp32[i]]
    assert deltas and max(deltas) > 1e-4
    # A record that is not a precision is refused, naming the file.
    (copy / "bioner.json").write_text(json.dumps({**meta, "precision": 16}))
    with pytest.raises(ValueError, match=r"bioner.json: 'precision' is 16"):
        Tagger.load(copy, device="cpu")


def test_scores_are_the_mean_type_probability_of_the_words(tagger: Tagger) -> None:
    member = tagger.members[0]
    text = "Cisplatin induced renal failure in rats treated with naloxone hydrochloride"
    [spans] = tagger.predict([text])
    doc = make_document(text)
    [feature] = member.alignment.encode(doc, member.tokenizer)
    with torch.no_grad():
        logits = member.model(input_ids=torch.tensor([feature.input_ids])).logits[0]
    probs = logits.softmax(-1).numpy()
    first = {}
    for k, w in enumerate(feature.word_ids):
        if w is not None and w not in first:
            first[w] = k
    labels = member.id2label
    for s in spans:
        words = [i for i, (a, b) in enumerate(doc.words) if s.start <= a and b <= s.end]
        mass = [
            sum(probs[first[w], j] for j, tag in labels.items() if tag.endswith(f"-{s.label}"))
            for w in words
        ]
        assert s.score == pytest.approx(float(np.mean(mass)), abs=1e-5)


def test_texts_that_are_sentences_already_are_not_split(exported: Path) -> None:
    text = "  Rats ( p = 0 . 003 ) . Dr. Smith saw 5 . \n"
    assert len(make_document(text).sentences) > 1
    assert make_document(text, split=False).sentences == [(2, len(text.rstrip()))]
    assert make_document("Title. Abstract here.", forced=[6], split=False).sentences == [
        (0, 6),
        (7, 21),
    ]
    whole = Tagger.load(exported, device="cpu", split_sentences=False)
    member = whole.members[0]
    [feature] = member.alignment.encode(make_document(text, split=False), member.tokenizer)
    with torch.no_grad():
        logits = member.model(input_ids=torch.tensor([feature.input_ids])).logits[0].numpy()
    expected = member.alignment.decode(
        make_document(text, split=False), [feature], [logits], member.id2label
    )
    assert whole.predict([text])[0] == expected


class _Payload:
    """Unpickling this runs a shell command that creates ``marker`` (what an attacker ships)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_model_folder_cannot_run_code(exported: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "downloaded"
    shutil.copytree(exported, copy)
    marker = tmp_path / "pwned"
    torch.save(_Payload(marker), copy / "extra.pt")
    meta = json.loads((copy / "bioner.json").read_text())
    meta["alignment"] = {
        "_target_": "torch.load",
        "f": str(copy / "extra.pt"),
        "weights_only": False,
    }
    (copy / "bioner.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="refusing alignment _target_='torch.load'"):
        Tagger.load(copy, device="cpu")
    assert not marker.exists()
    # Hydra's own keys and nested nodes are not parameters either.
    for alignment in (
        {"_target_": "bioner.data.alignment.Alignment", "_args_": ["first"]},
        {"unit": {"_target_": "torch.load", "f": str(copy / "extra.pt")}},
    ):
        meta["alignment"] = alignment
        (copy / "bioner.json").write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="bioner.json: "):
            Tagger.load(copy, device="cpu")
    assert not marker.exists()
    # A record without the _target_ is the same alignment as one with it.
    meta["alignment"] = json.loads((exported / "bioner.json").read_text())["alignment"]
    del meta["alignment"]["_target_"]
    (copy / "bioner.json").write_text(json.dumps(meta))
    assert repr(Tagger.load(copy, device="cpu").members[0].alignment) == repr(
        Tagger.load(exported, device="cpu").members[0].alignment
    )


def test_the_readme_python_example_runs(
    exported: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Use from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    placeholder = '"logs/train/runs/<run>"'
    assert placeholder in code
    monkeypatch.setenv("BIONER_DATA_DIR", str(shared_data))
    exec(compile(code.replace(placeholder, repr(str(exported))), "README.md", "exec"), {})
    out = capsys.readouterr().out
    first = out.splitlines()[0].split()
    assert int(first[0]) < int(first[1]) and first[3] in TYPES  # a span: start end text type
    assert re.search(r"^strict F1 0\.\d{4}, Chemical 0\.\d{4}$", out, flags=re.M)


def test_asking_for_cuda_without_a_cuda_device_is_a_config_error(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=f"tagger.device={device}: no CUDA device"):
            Tagger.load(exported, device=device)
    assert Tagger.load(exported, device="auto").device.type == "cpu"
