"""Corpus statistics per split, as the corpus READMEs report them."""

from __future__ import annotations

from typing import Any

from bioner.data.document import count_types
from bioner.data.readers.base import CorpusReader


def corpus_stats(reader: CorpusReader) -> dict[str, dict[str, Any]]:
    """Counts per split: ``documents``, ``sentences``, ``tokens`` (words), ``mentions`` and
    ``per_type`` (mentions per entity type, every type of ``reader.entity_types`` listed, in that
    order, even at zero)."""
    types = reader.entity_types
    stats: dict[str, dict[str, Any]] = {}
    for split in reader.splits:
        docs = reader.load(split)
        counts = count_types(docs)
        per_type = {t: counts.get(t, 0) for t in types}
        per_type.update({t: n for t, n in sorted(counts.items()) if t not in per_type})
        stats[split] = {
            "documents": len(docs),
            "sentences": sum(len(d.sentences) for d in docs),
            "tokens": sum(len(d.words) for d in docs),
            "mentions": sum(counts.values()),
            "per_type": per_type,
        }
    return stats


def stats_table(stats: dict[str, dict[str, Any]]) -> str:
    """``corpus_stats`` output as a Markdown table, one row per split."""
    types = list(dict.fromkeys(t for row in stats.values() for t in row["per_type"]))
    head = ["split", "documents", "sentences", "tokens", "mentions", *types]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for split, row in stats.items():
        cells = [row["documents"], row["sentences"], row["tokens"], row["mentions"]]
        cells += [row["per_type"].get(t, 0) for t in types]
        lines.append(f"| {split} | " + " | ".join(f"{c:,}" for c in cells) + " |")
    return "\n".join(lines)
