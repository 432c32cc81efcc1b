"""Several corpora as one (dataset=multi): the reader, scoring each document on its corpus's types,
the partial-annotation losses (the CRF's against brute force is in test_crf) and the batches that
carry it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bioner.data.alignment import Alignment
from bioner.data.batching import unannotated_table
from bioner.data.datamodule import NERDataModule
from bioner.data.document import ANNOTATED_TYPES, CORPUS, Document, Span, judged
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import CorpusNotFoundError, IOBReader, MultiCorpusReader
from bioner.data.readers.multi import corpus_repeats
from bioner.data.stats import corpus_stats
from bioner.data.tags import label_list
from bioner.errors import ConfigError
from bioner.evaluation import confusion_matrix, evaluate
from bioner.inference.formats import read_jsonl, record_document, write_jsonl
from bioner.inference.tagger import make_document
from bioner.models.encoders import HubEncoder
from bioner.models.module import TokenClassifier, multilabel_loss
from bioner.models.partial import allowed_tags, partial_cross_entropy, token_loss

TAGS = label_list(["Chemical", "Disease"], "IOB2")  # O, B-Chemical, I-Chemical, B-Disease, ...

CHEM = {
    "train": "Aspirin\tB-Chemical\ncauses\tO\nulcers\tO\n\nNaloxone\tB-Chemical\nhelps\tO\n\n",
    "devel": "Heparin\tB-Chemical\nworks\tO\n\n",
    "test": "Lithium\tB-Chemical\ncarbonate\tI-Chemical\n\n",
}
DIS = {
    "train": "Aspirin\tO\ncauses\tO\nulcers\tB-Disease\n\nfever\tB-Disease\nagain\tO\n\n",
    "devel": "mild\tO\nfever\tB-Disease\n\n",
    "test": "acute\tB-Disease\npain\tI-Disease\n\n",
}


def write_corpus(folder: Path, splits: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for split, text in splits.items():
        (folder / f"{split}.tsv").write_text(text)
    return folder


def iob(folder: Path, name: str, types: list[str] | None, **kwargs) -> IOBReader:
    files = {s: f"{s}.tsv" for s in ("train", "devel", "test")}
    return IOBReader(name=name, data_dir=folder, entity_types=types, files=files, **kwargs)


@pytest.fixture
def reader(tmp_path: Path) -> MultiCorpusReader:
    chem = iob(write_corpus(tmp_path / "chem", CHEM), "bc5cdr_chem", ["Chemical"])
    dis = iob(write_corpus(tmp_path / "dis", DIS), "ncbi_disease", ["Disease"])
    return MultiCorpusReader({"chem": chem, "dis": dis}, name="chem+dis")


# ------------------------------------------------------------------ the reader


def test_reader_unions_the_corpora_and_marks_each_document(reader: MultiCorpusReader) -> None:
    assert reader.entity_types == ["Chemical", "Disease"]
    train = reader.load("train")
    assert [d.id for d in train] == ["chem/train-0", "chem/train-1", "dis/train-0", "dis/train-1"]
    assert train[0].meta[CORPUS] == "chem" and train[0].meta[ANNOTATED_TYPES] == ("Chemical",)
    assert train[2].meta[ANNOTATED_TYPES] == ("Disease",)
    # The same sentence in both corpora keeps each corpus's own gold.
    assert [s.label for s in train[0].spans] == ["Chemical"]
    assert [s.label for s in train[2].spans] == ["Disease"]
    assert reader.annotation_groups() == [("Chemical",), ("Disease",)]
    assert reader.evaluation_document(train[2]).meta == train[2].meta


def test_reader_without_partial_annotation_and_with_one_corpus_covering_all(
    tmp_path: Path,
) -> None:
    both = iob(write_corpus(tmp_path / "both", CHEM), "both", ["Chemical", "Disease"])
    dis = iob(write_corpus(tmp_path / "dis", DIS), "dis", ["Disease"])
    # A corpus annotating every type is fully annotated: only the other is a group.
    assert MultiCorpusReader({"a": both, "b": dis}).annotation_groups() == [("Disease",)]
    naive = MultiCorpusReader({"a": both, "b": dis}, partial_annotation=False)
    assert naive.annotation_groups() == []
    # Scoring still judges each document on its corpus's types.
    assert naive.load("test")[-1].meta[ANNOTATED_TYPES] == ("Disease",)


def test_reader_refusals_name_the_fix(tmp_path: Path) -> None:
    dis = iob(write_corpus(tmp_path / "dis", DIS), "dis", ["Disease"])
    with pytest.raises(ConfigError, match=r"at least two corpora.*\+dataset@dataset.corpora"):
        MultiCorpusReader({"dis": dis})
    with pytest.raises(ConfigError, match="dataset.corpora.x is a dict"):
        MultiCorpusReader({"dis": dis, "x": {"name": "x"}})
    with pytest.raises(ConfigError, match="cannot hold '/'"):
        MultiCorpusReader({"dis": dis, "a/b": dis})
    with pytest.raises(ConfigError, match="partial_annotation must be true or false"):
        MultiCorpusReader({"dis": dis, "b": dis}, partial_annotation="yes")


def test_missing_member_files_name_the_member(tmp_path: Path) -> None:
    dis = iob(write_corpus(tmp_path / "dis", DIS), "ncbi_disease", ["Disease"])
    gone = iob(tmp_path / "nowhere", "bc2gm", ["GENE"])
    with pytest.raises(CorpusNotFoundError, match="corpus 'bc2gm' not found"):
        MultiCorpusReader({"dis": dis, "gene": gone}).load("train")


def test_building_the_reader_reads_no_file(tmp_path: Path) -> None:
    # Members that infer their types from a training file are read when the types are asked for.
    inferred = [iob(tmp_path / f"nowhere_{k}", k, None) for k in ("a", "b")]
    multi = MultiCorpusReader(dict(zip(("a", "b"), inferred)))
    with pytest.raises(CorpusNotFoundError, match="corpus 'a' not found"):
        _ = multi.entity_types


def test_a_member_s_format_error_names_its_settings_under_its_key(tmp_path: Path) -> None:
    chem = iob(write_corpus(tmp_path / "chem", CHEM), "chem", ["Chemical"])
    broken = {**DIS, "train": "mild\tO\nfever\tI-Disease\n\n"}
    dis = iob(write_corpus(tmp_path / "dis", broken), "dis", ["Disease"])
    with pytest.raises(CorpusFormatError, match=r"train.tsv:2.*dataset.corpora.dis.on_invalid"):
        MultiCorpusReader({"chem": chem, "dis": dis}).load("train")


def test_member_subsets_and_preparation_are_under_the_member_key(tmp_path: Path) -> None:
    chem = iob(
        write_corpus(tmp_path / "chem", CHEM),
        "chem",
        ["Chemical"],
        train_subset={"fraction": 0.5, "seed": 1},
    )
    dis = iob(write_corpus(tmp_path / "dis", DIS), "dis", ["Disease"])
    multi = MultiCorpusReader({"chem": chem, "dis": dis})
    assert list(multi.train_subsets()) == ["dataset.corpora.chem.train_subset"]
    assert len(multi.load("train")) == 3  # one of chem's two documents, both of dis's
    assert set(multi.preparation()["corpora"]) == {"chem"}


# ------------------------------------------------------------------ scoring


def test_predictions_of_types_a_corpus_does_not_annotate_are_not_scored() -> None:
    doc = Document(
        "dis/test-0",
        "acute pain",
        [Span(0, 10, "Disease")],
        meta={CORPUS: "dis", ANNOTATED_TYPES: ("Disease",)},
    )
    pred = [Span(0, 10, "Disease"), Span(6, 10, "Chemical")]
    assert judged(doc, pred) == [Span(0, 10, "Disease")]
    m = evaluate([doc], [pred]).metrics()
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 0)
    assert "Chemical" not in confusion_matrix([doc], [pred]).labels
    # Without the mark every prediction is scored.
    plain = Document(doc.id, doc.text, doc.spans)
    assert evaluate([plain], [pred]).metrics()["fp"] == 1


def test_prediction_files_keep_what_each_document_judges(tmp_path: Path) -> None:
    doc = Document(
        "dis/test-0",
        "acute pain",
        [Span(0, 10, "Disease")],
        meta={CORPUS: "dis", ANNOTATED_TYPES: ("Disease",)},
    )
    pred = [Span(6, 10, "Chemical", score=0.9)]
    path = write_jsonl(tmp_path / "test.jsonl", [doc], [pred])
    record = read_jsonl(path)[0]
    assert record["corpus"] == "dis" and record["annotated_types"] == ["Disease"]
    again = record_document(record)
    assert again.meta[ANNOTATED_TYPES] == ("Disease",)
    assert evaluate([again], [record["spans"]]).metrics()["fp"] == 0


# ------------------------------------------------------------------ losses


def test_allowed_tags_open_o_to_the_unannotated_types_only() -> None:
    unannotated = torch.tensor(unannotated_table(TAGS, [("Disease",)]))[[1]]  # a Disease corpus
    assert unannotated.tolist() == [[False, True, True, False, False]]
    labels = torch.tensor([[0, 3, 4, -100]])
    allowed = allowed_tags(labels, unannotated)
    assert allowed[0, 0].tolist() == [True, True, True, False, False]  # O: or a Chemical tag
    assert allowed[0, 1].tolist() == [False, False, False, True, False]  # gold entity: itself


def test_partial_cross_entropy_is_the_mass_of_the_allowed_tags() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, len(TAGS), requires_grad=True)
    labels = torch.tensor([[0, 3, 4, -100], [1, 0, 0, 0]])
    table = torch.tensor(unannotated_table(TAGS, [("Disease",)]))
    unannotated = table[[1, 0]]  # row 0 from the Disease corpus, row 1 fully annotated
    loss = partial_cross_entropy(logits, labels, unannotated)
    probs = logits.detach().softmax(-1)
    allowed = allowed_tags(labels, unannotated)
    on = labels != -100
    expected = -(probs * allowed).sum(-1).log()[on].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    # Fully annotated rows: the plain cross-entropy.
    none = torch.zeros_like(unannotated)
    assert partial_cross_entropy(logits, labels, none).item() == pytest.approx(
        token_loss(logits, {"labels": labels}).item(), rel=1e-6
    )


def test_token_loss_is_the_encoder_s_own_loss(tiny_model_dir: Path) -> None:
    model = HubEncoder(str(tiny_model_dir), name="tiny").load_model(dict(enumerate(TAGS)))
    ids = torch.randint(5, 100, (2, 6))
    labels = torch.tensor([[-100, 0, 1, 2, 0, -100], [-100, 3, 4, -100, -100, -100]])
    mask = torch.ones_like(ids)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert torch.equal(token_loss(out.logits, {"labels": labels}), out.loss)


def test_multilabel_partial_loss_leaves_out_the_unannotated_layers() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, len(TAGS))
    layers = torch.tensor([[1, 2], [3, 4]])  # Chemical's and Disease's B/I outputs
    labels = torch.tensor([[[0, 1], [0, 2], [-100, -100]], [[1, 0], [2, 0], [0, 1]]])
    unannotated = torch.tensor(unannotated_table(TAGS, [("Disease",)]))[[1, 0]]
    loss = multilabel_loss(logits, labels, layers, unannotated)
    cut = labels.clone()
    cut[0, :, 0] = -100  # the Disease corpus's Chemical layer
    picked = logits[..., layers]
    full = torch.cat([picked.new_zeros(*picked.shape[:-1], 1), picked], dim=-1)
    ce = torch.nn.functional.cross_entropy(
        full.reshape(-1, 3), cut.reshape(-1), ignore_index=-100, reduction="sum"
    )
    assert loss.item() == pytest.approx(ce.item() / 5, rel=1e-6)  # 5 labelled sub-words


# ------------------------------------------------------------------ batches and the module


@pytest.mark.parametrize("head", ["flat", "crf", "multilabel"])
def test_batches_mark_partial_documents_and_every_head_reads_them(
    reader: MultiCorpusReader, tiny_model_dir: Path, head: str
) -> None:
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    datamodule = NERDataModule(reader, Alignment(head=head), encoder.load_tokenizer())
    train = datamodule.encoded("train")
    assert [f.group for f in train.features] == [1, 1, 2, 2]
    batch = datamodule.collator([train[i] for i in range(len(train))])
    table = unannotated_table(datamodule.labels, [("Chemical",), ("Disease",)])
    assert batch["unannotated"].tolist() == table[[1, 1, 2, 2]].tolist()
    module = TokenClassifier(encoder, datamodule.id2label, head=head)
    module.eval()
    _, partial = module._forward(batch)
    _, naive = module._forward({k: v for k, v in batch.items() if k != "unannotated"})
    # Accepting more tags for O can only lower the loss, and here it does.
    assert partial.item() < naive.item()


def test_without_partial_annotation_batches_carry_no_mark(tmp_path: Path, tiny_model_dir) -> None:
    chem = iob(write_corpus(tmp_path / "chem", CHEM), "chem", ["Chemical"])
    dis = iob(write_corpus(tmp_path / "dis", DIS), "dis", ["Disease"])
    naive = MultiCorpusReader({"chem": chem, "dis": dis}, partial_annotation=False)
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    datamodule = NERDataModule(naive, Alignment(), encoder.load_tokenizer())
    train = datamodule.encoded("train")
    batch = datamodule.collator([train[i] for i in range(len(train))])
    assert "unannotated" not in batch
    assert np.all([f.group == 0 for f in train.features])


# ------------------------------------------------------------------ sampling across corpora


def test_corpus_repeats_follow_the_temperature() -> None:
    sizes = {"small": 456, "large": 5432, "mid": 1358}
    assert corpus_repeats(sizes, 1.0) == {"small": 1, "large": 1, "mid": 1}
    # Shares towards n ** (1 / T): square roots at T = 2, equal sizes at T = inf.
    assert corpus_repeats(sizes, 2.0) == {"small": 3, "large": 1, "mid": 2}
    assert corpus_repeats(sizes, math.inf) == {"small": 12, "large": 1, "mid": 4}
    # Sizes within a factor of 1.5 of the largest are not repeated.
    assert corpus_repeats({"a": 4560, "b": 5432}, math.inf) == {"a": 1, "b": 1}
    assert corpus_repeats({"a": 0, "b": 3}, 2.0) == {"a": 1, "b": 1}


@pytest.mark.parametrize("bad", [0.5, 0, "hot", True, None])
def test_sampling_temperature_below_one_is_refused(tmp_path: Path, bad: object) -> None:
    dis = iob(write_corpus(tmp_path / "dis", DIS), "dis", ["Disease"])
    with pytest.raises(ConfigError, match=r"sampling_temperature must be a number of at least 1"):
        MultiCorpusReader({"a": dis, "b": dis}, sampling_temperature=bad)


def test_a_temperature_repeats_the_smaller_corpus_in_every_epoch(
    tmp_path: Path, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chem = iob(write_corpus(tmp_path / "chem", CHEM), "chem", ["Chemical"])
    many = {**DIS, "train": DIS["train"] * 4}  # 8 sentences against chem's 2
    dis = iob(write_corpus(tmp_path / "dis", many), "dis", ["Disease"])
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")

    def epoch(temperature: float, unlabeled: bool = False) -> list[list[str]]:
        multi = MultiCorpusReader({"chem": chem, "dis": dis}, sampling_temperature=temperature)
        datamodule = NERDataModule(multi, Alignment(), encoder.load_tokenizer(), batch_size=4)
        train = datamodule.encoded("train")
        if unlabeled:
            datamodule.add_unlabeled([make_document("Some text.", "u")], 1.0, "text")
        loader = datamodule.train_dataloader()
        position = {id(f): i for i, f in enumerate(train.features)}  # equal sentences repeat
        batches = []
        for indices in loader.batch_sampler:
            assert len(loader.dataset[indices[0]]) == 2  # items stay (index, feature)
            items = [loader.dataset[i] for i in indices]
            docs = [
                train.docs[train.doc_index[position[id(f)]]].id if f.labels else "-"
                for _, f in items
            ]
            batches.append(docs)
        return batches

    once = [d for b in epoch(1.0) for d in b]
    assert sorted(once) == sorted(
        f"{k}/train-{i}" for k, n in (("chem", 2), ("dis", 8)) for i in range(n)
    )
    with caplog.at_level("INFO", logger="bioner.data.datamodule"):
        hot = epoch(math.inf)
    seen = [d for b in hot for d in b]
    # Each chem sentence 4 times, each dis sentence once: the epoch holds 16 sequences.
    assert len(seen) == 16 and len(hot) == 4
    assert {d: seen.count(d) for d in seen if d.startswith("chem")} == {
        "chem/train-0": 4,
        "chem/train-1": 4,
    }
    assert all(seen.count(d) == 1 for d in seen if d.startswith("dis"))
    assert (
        "sampling_temperature=inf: per epoch chem 2 sequences x4, 50.0% of the epoch "
        "(20.0% at temperature 1)" in caplog.text
    )
    # Unlabelled rows of a semi-supervised attack still follow the repeated labelled ones.
    mixed = epoch(math.inf, unlabeled=True)
    assert sum(b.count("-") for b in mixed) == 16
    assert sorted(d for b in mixed for d in b if d != "-") == sorted(seen)


# ------------------------------------------------------------------ corpora trained on only


def test_a_train_only_member_is_trained_on_and_never_scored(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    chem = {**CHEM, "train": CHEM["train"] * 3}  # enough documents for two folds
    chem = iob(write_corpus(tmp_path / "chem", chem), "chem", ["Chemical"])
    # Another model's predictions: a training file and nothing else.
    silver_text = "Heparin\tB-Chemical\nhelps\tO\n\nfever\tB-Disease\nagain\tO\n\n"
    silver = iob(write_corpus(tmp_path / "silver", {"train": silver_text}), "silver", None)
    multi = MultiCorpusReader({"chem": chem, "silver": silver}, train_only=["silver"])
    assert multi.scored_members() == ["chem"]
    assert multi.member_splits("silver") == ["train"] and multi.member_splits("chem") is None
    assert multi.member_splits("silver", ["devel", "test"]) == []
    multi.ensure_available()  # silver's devel.tsv and test.tsv are not needed
    assert tmp_path / "silver" / "devel.tsv" not in multi.required_files()
    assert multi.split_files("test") == [tmp_path / "chem" / "test.tsv"]
    assert multi.entity_types == ["Chemical", "Disease"]
    assert [d.id for d in multi.load("train")][-2:] == ["silver/train-0", "silver/train-1"]
    for split in ("devel", "test"):
        assert {d.meta[CORPUS] for d in multi.load(split)} == {"chem"}
    assert list(corpus_stats(silver, multi.member_splits("silver"))) == ["train"]
    # Scoring reads no training file: a kept run scores where the silver folder is gone.
    gone = iob(tmp_path / "gone", "silver", ["Chemical", "Disease"])
    kept = MultiCorpusReader({"chem": chem, "silver": gone}, train_only=["silver"])
    assert [d.id for d in kept.load("test")] == ["chem/test-0"]

    # Cross-validation deals the scored corpora's documents into folds; the others train in all.
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    for fold in (0, 1):
        datamodule = NERDataModule(
            multi, Alignment(), encoder.load_tokenizer(), batch_size=4, folds=2, fold=fold
        )
        train = [d.meta[CORPUS] for d in datamodule.documents("train")]
        assert train.count("silver") == 2
        for split in ("devel", "test"):
            assert {d.meta[CORPUS] for d in datamodule.documents(split)} == {"chem"}


def test_train_only_refusals_name_the_fix(tmp_path: Path) -> None:
    chem = iob(write_corpus(tmp_path / "chem", CHEM), "chem", ["Chemical"])
    dis = iob(write_corpus(tmp_path / "dis", DIS), "dis", ["Disease"])
    with pytest.raises(ConfigError, match=r"\['ncbi'\]: ncbi is not a member.*chem, dis"):
        MultiCorpusReader({"chem": chem, "dis": dis}, train_only=["ncbi"])
    with pytest.raises(ConfigError, match="names every member corpus, so nothing would be scored"):
        MultiCorpusReader({"chem": chem, "dis": dis}, train_only=["chem", "dis"])
    dealt = iob(tmp_path / "dis", "dis", ["Disease"], split={"ratios": [0.8, 0.1, 0.1]})
    with pytest.raises(ConfigError, match=r"dataset.corpora.dis.split deals .* would be lost"):
        MultiCorpusReader({"chem": chem, "dis": dealt}, train_only="dis")


def test_train_only_text_that_is_also_scored_is_warned_about(
    tmp_path: Path, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long = "Heparin\tB-Chemical\nworks\tO\nwell\tO\nin\tO\nmost\tO\npatients\tO\n\n"
    chem = iob(write_corpus(tmp_path / "chem", {**CHEM, "test": long}), "chem", ["Chemical"])
    silver = iob(write_corpus(tmp_path / "silver", {"train": long}), "silver", None)
    multi = MultiCorpusReader({"chem": chem, "silver": silver}, train_only=["silver"])
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    datamodule = NERDataModule(multi, Alignment(), encoder.load_tokenizer(), batch_size=4)
    with caplog.at_level("WARNING", logger="bioner.data.datamodule"):
        datamodule.encoded("train")
    assert "dataset.train_only (silver): 1 of its 1 sentences of five words or more are test" in (
        caplog.text
    )
