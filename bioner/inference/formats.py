"""Writing predicted spans to disk: JSON Lines (character offsets) and CoNLL (word tags).

JSONL, one document per line::

    {"id": "...", "text": "...", "spans": [{"start": 0, "end": 10, "label": "Chemical",
     "text": "Selegiline"}], "gold": [...]}

``gold`` is present when written with ``include_gold=True``. CoNLL, for conlleval and seqeval:
one word per line, ``word<TAB>gold<TAB>predicted`` (IOB2 by default; ``word<TAB>predicted`` without
gold), a blank line after each sentence, and a ``-DOCSTART-`` line before each document. Read it
with ``conlleval -d '\\t'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import Document, Span
from bioner.data.tags import spans_to_tags

_LINE_BREAK = re.compile(r"[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def _check_lengths(docs: Sequence[Document], predictions: Sequence[Sequence[Span]]) -> None:
    if len(docs) != len(predictions):
        raise ValueError(
            f"{len(docs)} documents but {len(predictions)} prediction lists; predictions[i] must "
            "hold the spans predicted for docs[i]"
        )


def _span_record(span: Span, text: str) -> dict[str, Any]:
    return {"start": span.start, "end": span.end, "label": span.label, "text": span.text(text)}


def write_jsonl(
    path: str | Path,
    docs: Sequence[Document],
    predictions: Sequence[Sequence[Span]],
    include_gold: bool = True,
) -> Path:
    """Write one JSON object per document with its predicted (and gold) character spans.

    Args:
        path: the output file (parent folders are created).
        docs: the documents.
        predictions: ``predictions[i]`` are the spans predicted for ``docs[i]``.
        include_gold: also write each document's own spans under ``gold``.

    Returns:
        The path written.
    """
    _check_lengths(docs, predictions)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for doc, spans in zip(docs, predictions):
            record: dict[str, Any] = {
                "id": doc.id,
                "text": doc.text,
                "spans": [_span_record(s, doc.text) for s in sorted(spans)],
            }
            if include_gold:
                record["gold"] = [_span_record(s, doc.text) for s in doc.spans]
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a file written by :func:`write_jsonl`; ``spans`` and ``gold`` come back as ``Span``\\ s.

    Raises:
        ValueError: a line is not such a record (the message names file and line).
    """
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
                for key in ("spans", "gold"):
                    if key in record:
                        record[key] = [Span(s["start"], s["end"], s["label"]) for s in record[key]]
                        bad = [s for s in record[key] if s.end > len(text)]
                        if bad:
                            raise ValueError(f"{key} span {bad[0]} ends after the text")
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(
                    f"{path}:{number}: not a bioner prediction record ({err}); each line must be a "
                    "JSON object with id, text and spans [{start, end, label}]"
                ) from err
            records.append(record)
    return records


def _word_tags(doc: Document, spans: Sequence[Span], scheme: str, what: str) -> list[str]:
    try:
        return spans_to_tags(doc.words, sorted(spans), scheme)
    except ValueError as err:
        raise ValueError(
            f"document {doc.id}: {what} spans cannot be written as word tags ({err}); CoNLL "
            "needs spans on word boundaries without overlaps (JSONL has no such limit)"
        ) from err


def write_conll(
    path: str | Path,
    docs: Sequence[Document],
    predictions: Sequence[Sequence[Span]],
    scheme: str = "IOB2",
    include_gold: bool = True,
) -> Path:
    """Write word-level tags, one word per line: ``word<TAB>gold<TAB>predicted``.

    Args:
        path: the output file (parent folders are created).
        docs: the documents; their ``words`` and ``sentences`` give the lines and blocks.
        predictions: ``predictions[i]`` are the spans predicted for ``docs[i]``.
        scheme: tag scheme of the written tags (``IOB1``, ``IOB2``, ``IOBES``).
        include_gold: write the gold tag column.

    Raises:
        ValueError: a word holds a tab or line break, or spans do not fall on word boundaries.

    Returns:
        The path written.
    """
    _check_lengths(docs, predictions)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for doc, spans in zip(docs, predictions):
            pred_tags = _word_tags(doc, spans, scheme, "predicted")
            gold_tags = _word_tags(doc, doc.spans, scheme, "gold") if include_gold else None
            f.write("-DOCSTART-\tO\tO\n\n" if include_gold else "-DOCSTART-\tO\n\n")
            blocks = doc.sentence_word_ranges() if doc.sentences else [(0, len(doc.words))]
            for lo, hi in blocks:
                if hi == lo:
                    continue
                for i in range(lo, hi):
                    word = doc.word_text(i)
                    if _LINE_BREAK.search(word):
                        raise ValueError(
                            f"document {doc.id}: word {i} ({word!r}) holds a tab or line break, "
                            "which CoNLL cannot represent; fix the corpus tokenisation"
                        )
                    cols = (
                        [word, pred_tags[i]]
                        if gold_tags is None
                        else [word, gold_tags[i], pred_tags[i]]
                    )
                    f.write("\t".join(cols) + "\n")
                f.write("\n")
    return path
