"""Predicted spans from a file, matched to a corpus's documents: what ``bioner-eval
predictions=<file>`` scores.

The file may come from ``bioner-predict``, from a run's ``predictions/`` or from another tool,
in any format bioner reads (:data:`PREDICTION_FORMATS`):

* ``jsonl``: ``bioner-predict``'s output (spans with ``type``) or a run's predictions file
  (spans with ``label``; its text-free ``.jsonl.gz`` copy too, checked by the text's hash);
* ``pubtator``, ``bioc``, ``brat`` (a folder of ``.txt``/``.ann`` pairs): read by the corpus
  reader of that format, the annotations being the predictions;
* ``conll``: ``word<TAB>tag`` lines, or ``word<TAB>gold<TAB>predicted`` (a run's
  ``predictions/<split>.conll``: the last column is read), for the IOB corpora. CoNLL has no
  document ids: its documents are numbered as the corpus's IOB files number theirs, so the file
  must hold the split's sentences in the corpus's order, word for word.

Documents are matched by id, and each must hold the corpus's text exactly (offsets index it):
a document of the scored split that the file lacks, or whose text differs, is an error naming
the file and the document, never a document scored as if nothing had been predicted.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import BioCReader, BratReader, IOBReader, PubTatorReader
from bioner.data.tags import SCHEMES
from bioner.errors import ConfigError, FormatError
from bioner.inference.formats import read_jsonl, text_matches_hash

log = logging.getLogger(__name__)

PREDICTION_FORMATS = ("jsonl", "pubtator", "bioc", "brat", "conll")

_PUBTATOR_SUFFIXES = (".pubtator", ".pubtator.txt", ".pubtator.gz", ".pubtator.txt.gz")
_CONLL_SUFFIXES = (".conll", ".conllu", ".iob", ".iob2", ".bio", ".tsv", ".tsv.gz", ".conll.gz")


class PredictionsError(FormatError):
    """A predictions file that cannot be scored against the corpus as it stands."""


@dataclass(frozen=True)
class PredictedDocument:
    """One document of a predictions file.

    Attributes:
        id: the document id (PMID, file name, ``split-index`` for CoNLL).
        text: the text the spans index, or ``None`` in a text-free file (then ``text_sha256``).
        spans: the predicted spans.
        text_sha256: the hash prefix a text-free record keeps in place of its text.
    """

    id: str
    text: str | None
    spans: list[Span]
    text_sha256: str | None = None


def detect_predictions_format(path: str | Path) -> str:
    """The format of ``path`` from its name: a folder is brat, ``.jsonl``/``.json`` (or
    ``.gz``) jsonl, ``.xml`` BioC, a name with ``pubtator`` PubTator, ``.conll``/``.tsv``/
    ``.iob``/``.bio`` CoNLL; else its first line decides (``id|t|`` PubTator, a TAB CoNLL).

    Raises:
        PredictionsError: none of these fits; the message names ``predictions_format``.
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "brat"
    if name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        return "jsonl"
    if name.endswith((".xml", ".xml.gz")):
        return "bioc"
    if "pubtator" in name or name.endswith(_PUBTATOR_SUFFIXES):
        return "pubtator"
    if name.endswith(_CONLL_SUFFIXES):
        return "conll"
    if path.is_file():
        with open(path, "rb") as f:
            first = f.readline().decode("utf-8", errors="replace").lstrip("\ufeff")
        if "|t|" in first.split("\t")[0]:
            return "pubtator"
        if "\t" in first or first.startswith("-DOCSTART-"):
            return "conll"
    raise PredictionsError(
        f"predictions={path}: cannot tell its format from its name or first line; give it: "
        f"predictions_format=<{' | '.join(PREDICTION_FORMATS)}>"
    )


def resolve_format(path: str | Path, fmt: str) -> str:
    """``fmt``, or for ``auto`` the format :func:`detect_predictions_format` tells, of the file
    or folder ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ConfigError: ``fmt`` is none of :data:`PREDICTION_FORMATS` nor ``auto``.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"predictions={path}: no such file or folder")
    if fmt == "auto":
        return detect_predictions_format(path)
    if fmt not in PREDICTION_FORMATS:
        raise ConfigError(
            f"predictions_format={fmt}: choose auto or one of {', '.join(PREDICTION_FORMATS)}"
        )
    return fmt


def read_predictions(
    path: str | Path, fmt: str, split: str, scheme: str = "IOB2"
) -> list[PredictedDocument]:
    """The documents of the predictions file ``path`` in format ``fmt``.

    Args:
        path: the file (a folder for brat).
        fmt: one of :data:`PREDICTION_FORMATS`, or ``auto`` (:func:`resolve_format`).
        split: the corpus split it is scored on (CoNLL documents are numbered ``<split>-<n>``,
            as the IOB reader numbers the corpus's).
        scheme: the tag scheme of a CoNLL file: ``IOB2``, ``IOB1`` or ``IOBES``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorpusFormatError, FormatError: a line cannot be read (file and line named).
    """
    path = Path(path)
    fmt = resolve_format(path, fmt)
    if scheme not in SCHEMES:
        raise ConfigError(f"predictions_scheme={scheme}: choose one of {', '.join(SCHEMES)}")
    if fmt == "jsonl":
        return [
            PredictedDocument(
                str(r["id"]),
                r["text"],
                list(r["spans"]),
                None if r["text"] is not None else str(r.get("text_sha256")),
            )
            for r in read_jsonl(path)
        ]
    # The corpus reader of the format, every split naming this file (read as the training split:
    # any entity type is allowed); the annotations it reads are the predictions.
    where = {s: path.name for s in ("train", "devel", "test")}
    name = f"predictions {path.name}"
    if fmt == "pubtator":
        reader = PubTatorReader(name, path.parent, files=where)
    elif fmt == "bioc":
        reader = BioCReader(name, path.parent, files=where)
    elif fmt == "brat":
        reader = BratReader(name, path.parent, folders=where)
    else:
        # Tag sequences read as conlleval and seqeval read them: a stray I- starts an entity
        # (each repair counted in a warning).
        reader = IOBReader(name, path.parent, files=where, scheme=scheme, on_invalid="repair")
    try:
        docs = reader.load("train")
    except CorpusFormatError as err:
        if "dataset." not in err.fix:
            raise
        # The fix names an option of the corpus's reader, which this file is not read with.
        fix = (
            "give the file's tag scheme: predictions_scheme=IOB1 or IOBES"
            if "dataset.scheme" in err.fix
            else "correct the file, or write the spans in another format (jsonl: bioner-predict "
            "format=jsonl)"
        )
        raise CorpusFormatError(err.path, err.line, err.problem, fix) from None
    if fmt == "conll":  # numbered as the corpus numbers the scored split's documents
        docs = [dataclasses.replace(d, id=f"{split}-{d.id.split('-', 1)[1]}") for d in docs]
    return [PredictedDocument(d.id, d.text, list(d.spans)) for d in docs]


def match_predictions(
    gold: Sequence[Document],
    predicted: Sequence[PredictedDocument],
    path: str | Path,
    split: str,
    corpus: str,
) -> list[list[Span]]:
    """``predictions[i]``: the spans the file predicts for ``gold[i]``.

    Raises:
        PredictionsError: a document id twice in the file; documents of ``gold`` that the file
            lacks (counted, the first named); a document whose text is not the corpus's (the
            first character that differs shown).
    """
    by_id: dict[str, PredictedDocument] = {}
    for doc in predicted:
        if doc.id in by_id:
            raise PredictionsError(
                f"predictions={path}: document {doc.id} appears twice; each document once"
            )
        by_id[doc.id] = doc
    missing = [d.id for d in gold if d.id not in by_id]
    if missing and len(missing) == len(gold):
        seen = f"its ids look like {next(iter(by_id))!r}, " if by_id else "it holds no document; "
        raise PredictionsError(
            f"predictions={path} holds none of the {len(gold)} {split} documents of {corpus} "
            f"({seen}the corpus's like {gold[0].id!r}): score it against the corpus and split it "
            "was predicted on (dataset=..., splits=[...])"
        )
    if missing:
        raise PredictionsError(
            f"predictions={path} holds no document for {len(missing)} of the {len(gold)} {split} "
            f"documents of {corpus} (first: {missing[0]}); each must be in it, those without "
            "predicted spans too (bioner-predict lists every document), or the scores would "
            "count it as tagged with nothing"
        )
    out = []
    for doc in gold:
        own = by_id[doc.id]
        if own.text is None:
            if not text_matches_hash(doc.text, own.text_sha256 or ""):
                raise PredictionsError(
                    f"predictions={path}: document {doc.id} was predicted on another text than "
                    f"{corpus}'s (its text_sha256 differs); score it against that corpus"
                )
        elif own.text != doc.text:
            at = next(
                (i for i, (a, b) in enumerate(zip(own.text, doc.text)) if a != b),
                min(len(own.text), len(doc.text)),
            )
            raise PredictionsError(
                f"predictions={path}: document {doc.id}'s text differs from {corpus}'s at "
                f"character {at} ({own.text[at : at + 20]!r} against {doc.text[at : at + 20]!r}); "
                "its offsets index another text. Tag the corpus's own text (bioner-predict "
                "input=<the corpus's file>), or score against the corpus it was tagged on"
            )
        out.append(sorted(own.spans))
    return out


def scored_predictions(
    path: str | Path,
    fmt: str,
    gold: Mapping[str, Sequence[Document]],
    corpus: str,
    scheme: str = "IOB2",
) -> dict[str, list[list[Span]]]:
    """Per split of ``gold``, the spans the file ``path`` predicts for each of its documents
    (:func:`match_predictions`); the file's documents in none of the splits are counted in a
    warning and left out.

    Raises:
        ConfigError: a CoNLL file for several splits, or for a corpus with document ids; a file
            that holds every document of some of the splits but not of the others (the splits
            to score named).
        PredictionsError: see :func:`match_predictions`.
    """
    splits = list(gold)
    if fmt == "conll":
        if len(splits) != 1:
            raise ConfigError(
                f"predictions={path}: a CoNLL file holds one split's sentences, in the corpus's "
                f"order; score that one alone, as in splits=[test], not splits={splits}"
            )
        named = [d.id for d in gold[splits[0]] if not d.id.startswith(f"{splits[0]}-")]
        if named:
            raise ConfigError(
                f"predictions={path}: a CoNLL file has no document ids and is matched to an IOB "
                f"corpus sentence for sentence, but {corpus} names its documents ({named[0]}): "
                "score a file with ids and offsets (bioner-predict format=jsonl, pubtator, bioc "
                "or brat)"
            )
    read = read_predictions(path, fmt, splits[0], scheme)
    ids = {d.id for d in read}
    covered = [s for s in splits if all(d.id in ids for d in gold[s])]
    if covered and len(covered) < len(splits):
        raise ConfigError(
            f"predictions={path} holds every {' and '.join(covered)} document of {corpus} but "
            f"not the others of splits={splits}: score those alone, splits=[{','.join(covered)}]"
        )
    scored = {d.id for docs in gold.values() for d in docs}
    extra = [d.id for d in read if d.id not in scored]
    if extra:
        log.warning(
            "predictions=%s: %d of its documents are in none of the scored splits %s (first: "
            "%s); they are left out of the scores",
            path, len(extra), splits, extra[0],
        )  # fmt: skip
    return {s: match_predictions(gold[s], read, path, s, corpus) for s in splits}
