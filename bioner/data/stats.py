"""Corpus statistics per split, as the corpus READMEs report them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bioner.data.document import OVERLAP_KINDS, count_types, overlaps
from bioner.data.readers.base import CorpusReader


def corpus_stats(
    reader: CorpusReader, splits: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Counts per split (of ``splits``, all by default): ``documents``, ``sentences``, ``tokens``
    (words), ``mentions``, ``per_type`` (mentions per entity type, every type of
    ``reader.entity_types`` listed, in that order, even at zero) and ``overlaps``: mentions
    ``nested`` in a longer one, ``crossing`` another, or on the ``same_extent`` as another
    (:func:`bioner.data.document.overlaps`)."""
    types = reader.entity_types
    stats: dict[str, dict[str, Any]] = {}
    for split in reader.splits if splits is None else splits:
        docs = reader.load(split)
        counts = count_types(docs)
        per_type = {t: counts.get(t, 0) for t in types}
        per_type.update({t: n for t, n in sorted(counts.items()) if t not in per_type})
        kinds = [overlaps(d.spans) for d in docs]
        stats[split] = {
            "documents": len(docs),
            "sentences": sum(len(d.sentences) for d in docs),
            "tokens": sum(len(d.words) for d in docs),
            "mentions": sum(counts.values()),
            "per_type": per_type,
            "overlaps": {k: sum(c[k] for c in kinds) for k in OVERLAP_KINDS},
        }
    return stats


def stats_table(stats: dict[str, dict[str, Any]]) -> str:
    """``corpus_stats`` output as a Markdown table, one row per split."""
    types = list(dict.fromkeys(t for row in stats.values() for t in row["per_type"]))
    kinds = [f"{k.replace('_', ' ')}" for k in OVERLAP_KINDS]
    head = ["split", "documents", "sentences", "tokens", "mentions", *kinds, *types]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for split, row in stats.items():
        cells = [row["documents"], row["sentences"], row["tokens"], row["mentions"]]
        cells += [row.get("overlaps", {}).get(k, 0) for k in OVERLAP_KINDS]
        cells += [row["per_type"].get(t, 0) for t in types]
        lines.append(f"| {split} | " + " | ".join(f"{c:,}" for c in cells) + " |")
    return "\n".join(lines)
