"""Span-level scores on character spans.

Every score here compares *character spans* (:class:`~bioner.data.document.Span`) after decoding,
never sub-word or word labels, so a change of tokenizer or label strategy cannot inflate them.
``gold[i]`` is a :class:`~bioner.data.document.Document` and ``pred[i]`` the spans predicted for
it. Spans are compared as multisets: a prediction repeated twice can match one gold span at most
once, the copy is a false positive.

Matching schemes (SemEval-2013 Task 9.1 names in brackets):

- ``strict`` [SemEval "strict"]: a prediction is a true positive when a gold span has the same
  start, end and type. ``precision``, ``recall``, ``f1`` (micro over all types) and the per-type
  ``precision_<Type>``, ``recall_<Type>``, ``f1_<Type>`` use it.
- ``boundary`` [SemEval "exact"]: same start and end, type ignored (``*_boundary``).
- ``overlap`` [SemEval "type"]: the prediction shares at least one character with a gold span of
  the same type (``*_overlap``). Pairs are matched one to one by a maximum bipartite matching
  of the same-type pairs that overlap (as many pairs as possible), and among maximum matchings
  one with the most identical pairs (:func:`match_spans`). Each pair is one true positive;
  unpaired predictions are false positives, unpaired gold spans false negatives.
- ``partial`` [SemEval "partial", MUC half credit]: like ``overlap`` but type ignored, and a pair
  with different boundaries earns 0.5 true positive instead of 1 (``*_partial``); so
  ``precision_partial = (exact + 0.5 * partial pairs) / predictions``.

What NER papers often call "partial match F1" is ``f1_overlap`` (type kept, full credit);
SemEval's "partial" scheme is ``f1_partial``.

Formulas, for every scheme; an undefined ratio is 0, the value seqeval's default
``zero_division="warn"`` returns (without the warning)::

    precision = tp / (tp + fp)                   0 when there are no predictions
    recall    = tp / (tp + fn)                   0 when there is no gold span
    f1        = 2 * precision * recall / (precision + recall)    0 when both are 0

Other keys of :meth:`SpanEvaluation.metrics`:

- ``f1_macro`` (and ``precision_macro``, ``recall_macro``): unweighted mean of the per-type
  scores over the types that occur in the gold *or* the predicted spans (a type only ever
  predicted counts with F1 0; a type in neither is not averaged); 0 when there is no type at all.
  This is seqeval's / scikit-learn's ``average="macro"``.
- ``entity_accuracy = tp / (tp + fp + fn)`` (strict; 0 when all are 0).
- ``exact_match_documents``: share of documents whose predicted span multiset equals the gold
  one (nested and crossing spans included: predicting only the outer span of a nested pair is
  no match). ``exact_match_sentences``: the same per sentence of ``doc.sentences`` (a document
  without sentences is one sentence). A span belongs to every sentence from the last one
  starting at or before its start to the last one starting before its end, so a prediction
  crossing a sentence break spoils both sentences, and one lying between sentences spoils the
  sentence before it.
  The ``..._with_entities`` variants count only sentences / documents with at least one gold
  span. All four are 0 over an empty set.
- ``tp``, ``fp``, ``fn``: strict micro counts (as floats).

``token_accuracy`` needs word tags, not spans, so it is the separate function
:func:`token_accuracy`: the share of words whose predicted tag string equals the gold one
(``O`` words included).

For IOB corpora ``precision``/``recall``/``f1`` and their per-type and macro versions equal
seqeval's ``mode="strict", scheme=IOB2`` scores on the word tags of the same spans, provided the
predicted tags are valid IOB2. On invalid tags the two differ by design: seqeval's strict mode
*discards* an entity that starts with ``I-`` (after ``O`` or another type), whereas bioner's
decoders repair it the way conlleval (and seqeval's default mode) reads it, as the start of a new
entity (see :func:`bioner.data.tags.tags_to_word_spans`), and score the repaired span.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np

from bioner.data.document import Document, Span, judged

SCHEMES = ("strict", "boundary", "overlap", "partial")
# Suffixes of summary keys; a type with one of these names would collide with them.
_RESERVED_TYPES = frozenset({"macro", *SCHEMES[1:]})
# The exact-match tallies of each document (the ``exact_match`` columns).
EXACT_MATCH = (
    "sentences",
    "sentences_matched",
    "sentences_with_entities",
    "sentences_with_entities_matched",
    "documents",
    "documents_matched",
    "documents_with_entities",
    "documents_with_entities_matched",
)
Column = tuple[str, str]


def validate_predictions(
    gold: Sequence[Document], pred: Sequence[Sequence[Span]]
) -> list[list[Span]]:
    """Check that ``pred`` fits ``gold`` and return each document's predictions sorted.

    Where a document's corpus annotates only some types (a corpus of a
    :class:`~bioner.data.readers.MultiCorpusReader`), its predictions of other types are left out
    (:func:`~bioner.data.document.judged`): its gold cannot say whether they are right.

    Raises:
        ValueError: the lengths differ, or a gold or predicted span ends after its document's text
            (the message names the document).
        TypeError: an item is not a :class:`Document` / :class:`Span`.
    """
    if len(gold) != len(pred):
        raise ValueError(
            f"{len(gold)} gold documents but {len(pred)} prediction lists: pred[i] must hold the "
            "predicted spans of gold[i] (an empty list when nothing was predicted)"
        )
    out = []
    for i, (doc, spans) in enumerate(zip(gold, pred)):
        if not isinstance(doc, Document):
            raise TypeError(f"gold[{i}] is a {type(doc).__name__}, not a Document")
        if isinstance(spans, Document):
            raise TypeError(
                f"pred[{i}] is a Document ({spans.id}); pass its spans (doc.spans) instead"
            )
        n = len(doc.text)
        for span in doc.spans:
            if span.end > n:
                raise ValueError(
                    f"document {doc.id}: gold span {span} ends after the text ({n} characters)"
                )
        for span in spans:
            if not isinstance(span, Span):
                raise TypeError(
                    f"document {doc.id}: prediction {span!r} is not a Span; build one with "
                    "Span(start, end, label)"
                )
            if span.end > n:
                raise ValueError(
                    f"document {doc.id}: predicted span {span} ends after the text ({n} "
                    "characters); predictions must be character offsets into that document's text"
                )
        out.append(sorted(judged(doc, spans)))
    return out


def types_of(gold: Sequence[Document], pred: Sequence[Sequence[Span]]) -> list[str]:
    """The entity types occurring in the gold or the predicted spans, sorted."""
    return sorted({s.label for doc in gold for s in doc.spans} | {s.label for p in pred for s in p})


def _overlapping(gold: list[Span], pred: list[Span]) -> Iterator[tuple[int, int]]:
    """Index pairs of overlapping spans; ``pred`` must be sorted by start."""
    if not gold or not pred:
        return
    starts = [p.start for p in pred]
    longest = max(p.end - p.start for p in pred)
    for gi, g in enumerate(gold):
        # A prediction starting at or before g.start - longest ends at or before g.start.
        for pi in range(bisect_right(starts, g.start - longest), bisect_left(starts, g.end)):
            if pred[pi].end > g.start:
                yield gi, pi


def match_spans(gold: list[Span], pred: list[Span], same_type: bool) -> list[tuple[int, int]]:
    """Pair overlapping spans one to one, as the ``overlap`` scheme defines (module docstring):
    a maximum matching, and among maximum matchings one with the most identical pairs.

    A greedy pairing (identical first, then by decreasing overlap) can pair fewer: gold
    ``[0,10) [10,13)`` against predictions ``[0,2) [2,12)`` pairs ``[0,10)`` with ``[2,12)`` and
    strands the rest, where ``[0,10)-[0,2)`` and ``[10,13)-[2,12)`` pair both.

    Args:
        gold: gold spans, sorted.
        pred: predicted spans, sorted.
        same_type: pair only spans of the same type (``overlap``) or any types (``partial``).

    Returns:
        ``(gold index, pred index)`` pairs, sorted.
    """
    edges: dict[tuple[int, int], bool] = {}
    for gi, pi in _overlapping(gold, pred):
        g, p = gold[gi], pred[pi]
        if not same_type or g.label == p.label:
            edges[gi, pi] = g.start == p.start and g.end == p.end
    if not edges:
        return []
    # Matchings decompose over the connected components of the overlap graph (small: the spans
    # around one stretch of text); each is solved exactly.
    parent = {("g", gi): ("g", gi) for gi, _ in edges} | {("p", pi): ("p", pi) for _, pi in edges}

    def root(node: tuple[str, int]) -> tuple[str, int]:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for gi, pi in edges:
        parent[root(("g", gi))] = root(("p", pi))
    components: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for gi, pi in edges:
        components.setdefault(root(("g", gi)), []).append((gi, pi))
    pairs = []
    for component in components.values():
        if len(component) == 1:
            pairs += component
            continue
        rows = sorted({gi for gi, _ in component})
        cols = sorted({pi for _, pi in component})
        # Weight K per pair plus 1 per identical pair, K > the most identical pairs possible:
        # the most pairs first, then the most identical ones.
        k = min(len(rows), len(cols)) + 1
        weights = np.zeros((len(rows), len(cols)))
        for gi, pi in component:
            weights[rows.index(gi), cols.index(pi)] = k + edges[gi, pi]
        pairs += [
            (rows[r], cols[c]) for r, c in _max_weight_assignment(weights) if weights[r, c] > 0
        ]
    return sorted(pairs)


def _max_weight_assignment(weights: np.ndarray) -> list[tuple[int, int]]:
    """Rows matched to distinct columns with the largest total weight (Hungarian method with
    potentials, O(n^2 m)); every row of the smaller side is assigned, weight-0 cells included.

    Hand-written because the component matrices are tiny and bioner does not depend on scipy
    (``scipy.optimize.linear_sum_assignment(weights, maximize=True)`` gives the same total).
    """
    transposed = weights.shape[0] > weights.shape[1]
    cost = -(weights.T if transposed else weights)
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    match = [0] * (m + 1)  # match[j]: the row (1-based) assigned to column j, 0 if none
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        match[0] = i
        j0 = 0
        minv = [np.inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = match[j0], np.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if reduced < minv[j]:
                        minv[j], way[j] = reduced, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    out = [(match[j] - 1, j - 1) for j in range(1, m + 1) if match[j]]
    return [(c, r) for r, c in out] if transposed else out


def _sentence_buckets(doc: Document, spans: list[Span]) -> list[list[Span]]:
    """Spans per sentence, by the membership rule of the module docstring."""
    sentences = doc.sentences or [(0, len(doc.text))]
    starts = [s for s, _ in sentences]
    buckets: list[list[Span]] = [[] for _ in sentences]
    for span in spans:
        first = max(bisect_right(starts, span.start) - 1, 0)
        last = max(bisect_left(starts, span.end) - 1, 0)
        for k in range(first, last + 1):
            buckets[k].append(span)
    return buckets


def document_counts(doc: Document, pred: list[Span]) -> dict[Column, float]:
    """One document's counts, keyed by the ``(family, statistic)`` columns of
    :func:`count_columns`; ``type/<Type>`` columns only for the types it has. ``pred`` sorted."""
    gold = sorted(doc.spans)
    row: dict[Column, float] = {}

    def put(family: str, tp: float, n_pred: int, n_gold: int) -> None:
        row[family, "tp"] = tp
        row[family, "fp"] = n_pred - tp
        row[family, "fn"] = n_gold - tp

    common = Counter(gold) & Counter(pred)
    put("strict", sum(common.values()), len(pred), len(gold))
    n_gold_type = Counter(s.label for s in gold)
    n_pred_type = Counter(s.label for s in pred)
    tp_type: Counter[str] = Counter()
    for span, k in common.items():
        tp_type[span.label] += k
    for label in n_gold_type | n_pred_type:
        put(f"type/{label}", tp_type[label], n_pred_type[label], n_gold_type[label])

    bounds = Counter((s.start, s.end) for s in gold) & Counter((s.start, s.end) for s in pred)
    put("boundary", sum(bounds.values()), len(pred), len(gold))
    put("overlap", len(match_spans(gold, pred, same_type=True)), len(pred), len(gold))
    partial = 0.0
    for gi, pi in match_spans(gold, pred, same_type=False):
        same = gold[gi].start == pred[pi].start and gold[gi].end == pred[pi].end
        partial += 1.0 if same else 0.5
    put("partial", partial, len(pred), len(gold))

    em = dict.fromkeys(EXACT_MATCH, 0.0)
    for g, p in zip(_sentence_buckets(doc, gold), _sentence_buckets(doc, pred)):
        hit = g == p  # both were filled from sorted lists, so they are sorted
        em["sentences"] += 1
        em["sentences_matched"] += hit
        if g:
            em["sentences_with_entities"] += 1
            em["sentences_with_entities_matched"] += hit
    hit = gold == pred
    em["documents"] = 1
    em["documents_matched"] = hit
    em["documents_with_entities"] = bool(gold)
    em["documents_with_entities_matched"] = bool(gold) and hit
    row.update({("exact_match", k): float(v) for k, v in em.items()})
    return row


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall and F1 from counts (element-wise), with the zero-division convention."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    precision = _divide(tp, tp + fp)
    recall = _divide(tp, tp + fn)
    # Same operation order as seqeval, so that equal counts give bit-identical scores.
    f1 = _divide(2.0 * precision * recall, precision + recall)
    return precision, recall, f1


class SpanEvaluation:
    """Span-level scores of predictions against gold documents; built by :func:`evaluate`.

    Per-document counts are kept so that any resampling of documents (see
    :mod:`bioner.evaluation.bootstrap`) is a weighted sum of rows of :attr:`counts`.

    Attributes:
        doc_ids: the gold document ids, in order.
        types: entity types occurring in the gold or the predicted spans, sorted.
        columns: ``(family, statistic)`` names of the columns of :attr:`counts`: families are the
            schemes of :data:`SCHEMES`, ``type/<Type>`` (strict, per type) with statistics
            ``tp``, ``fp``, ``fn``, and ``exact_match`` with the sentence and document tallies.
        counts: array of shape ``(len(doc_ids), len(columns))``.
    """

    def __init__(
        self, doc_ids: list[str], types: list[str], columns: list[Column], counts: np.ndarray
    ) -> None:
        self.doc_ids = doc_ids
        self.types = types
        self.columns = columns
        self.counts = counts
        self._index = {c: i for i, c in enumerate(columns)}

    def __len__(self) -> int:
        return len(self.doc_ids)

    def metrics_from_counts(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        """All metrics from column totals of shape ``(..., len(columns))``, element-wise.

        ``totals = counts.sum(0)`` gives the point estimates; ``weights @ counts`` with one row of
        document multiplicities per bootstrap sample gives their bootstrap distribution.
        """

        def col(family: str, stat: str) -> np.ndarray:
            return totals[..., self._index[family, stat]]

        def family(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return col(name, "tp"), col(name, "fp"), col(name, "fn")

        out: dict[str, np.ndarray] = {}
        tp, fp, fn = family("strict")
        out["precision"], out["recall"], out["f1"] = prf(tp, fp, fn)
        out["tp"], out["fp"], out["fn"] = tp, fp, fn
        out["entity_accuracy"] = _divide(tp, tp + fp + fn)

        per_type = []
        present = []
        for label in self.types:
            counts = family(f"type/{label}")
            scores = prf(*counts)
            # Under resampling a type can vanish from a sample (no gold, no predicted span): its
            # scores are undefined there (NaN, not 0), and it leaves the macro mean.
            defined = sum(counts) > 0
            for name, value in zip(("precision", "recall", "f1"), scores):
                out[f"{name}_{label}"] = np.where(defined, value, np.nan)
            per_type.append(scores)
            present.append(defined)
        if per_type:
            mask = np.stack(present)
            n_present = mask.sum(axis=0)
            for k, name in enumerate(("precision", "recall", "f1")):
                values = np.stack([scores[k] for scores in per_type])
                out[f"{name}_macro"] = _divide(np.where(mask, values, 0.0).sum(axis=0), n_present)
        else:
            for name in ("precision", "recall", "f1"):
                out[f"{name}_macro"] = np.zeros(totals.shape[:-1])

        for scheme in SCHEMES[1:]:
            scores = prf(*family(scheme))
            for name, value in zip(("precision", "recall", "f1"), scores):
                out[f"{name}_{scheme}"] = value

        for unit in ("sentences", "documents"):
            for subset in ("", "_with_entities"):
                out[f"exact_match_{unit}{subset}"] = _divide(
                    col("exact_match", f"{unit}{subset}_matched"),
                    col("exact_match", f"{unit}{subset}"),
                )
        return out

    def metrics(self) -> dict[str, float]:
        """Point estimates of every metric of the module docstring, keyed without split prefix."""
        totals = self.counts.sum(axis=0)
        return {k: float(v) for k, v in self.metrics_from_counts(totals).items()}

    def per_type(self) -> list[dict]:
        """One row per type: ``type, tp, fp, fn, precision, recall, f1, support`` (strict)."""
        totals = self.counts.sum(axis=0)
        rows = []
        for label in self.types:
            tp, fp, fn = (int(totals[self._index[f"type/{label}", s]]) for s in ("tp", "fp", "fn"))
            precision, recall, f1 = (float(x) for x in prf(tp, fp, fn))
            rows.append(
                {
                    "type": label,
                    "tp": tp,
                    "fp": fp,
                    "fn": fn,
                    "precision": precision,
                    "recall": recall,
                    "f1": f1,
                    "support": tp + fn,
                }
            )
        return rows

    def subset(self, rows: Sequence[int], types: Sequence[str] | None = None) -> SpanEvaluation:
        """The evaluation of the documents at ``rows`` only (one corpus of several), its per-type
        scores and macro means over ``types`` only where given."""
        kept = [t for t in self.types if types is None or t in types]
        ids = [self.doc_ids[i] for i in rows]
        return SpanEvaluation(ids, kept, self.columns, self.counts[list(rows)])

    def per_document(self) -> list[dict]:
        """One row per document: ``id, tp, fp, fn, exact_match`` (strict), for error analysis."""
        stats = [self._index["strict", s] for s in ("tp", "fp", "fn")]
        matched = self._index["exact_match", "documents_matched"]
        return [
            {
                "id": doc_id,
                "tp": int(row[stats[0]]),
                "fp": int(row[stats[1]]),
                "fn": int(row[stats[2]]),
                "exact_match": bool(row[matched]),
            }
            for doc_id, row in zip(self.doc_ids, self.counts)
        ]

    def to_markdown(self, digits: int = 4) -> str:
        """Per-type table plus the micro and macro rows, as a Markdown table."""
        m = self.metrics()
        lines = [
            "| type | precision | recall | f1 | support |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in self.per_type():
            lines.append(
                f"| {r['type']} | {r['precision']:.{digits}f} | {r['recall']:.{digits}f} "
                f"| {r['f1']:.{digits}f} | {r['support']} |"
            )
        support = int(m["tp"] + m["fn"])
        for name, suffix in (("micro (strict)", ""), ("macro", "_macro")):
            p, r, f = (m[f"{k}{suffix}"] for k in ("precision", "recall", "f1"))
            cells = " | ".join(f"{x:.{digits}f}" for x in (p, r, f))
            lines.append(f"| {name} | {cells} | {support} |")
        return "\n".join(lines)


def check_type_names(types: Sequence[str]) -> None:
    """Raise ``ValueError`` if an entity type is named like a summary key (``f1_macro``...)."""
    clash = _RESERVED_TYPES.intersection(types)
    if clash:
        raise ValueError(
            f"entity type(s) {sorted(clash)} would collide with the summary keys f1_<name>; "
            f"rename it as the corpus is read: dataset.relabel.map={{{sorted(clash)[0]}: <name>}}"
        )


def count_columns(types: Sequence[str]) -> list[Column]:
    """The columns of :attr:`SpanEvaluation.counts` for these entity types, in their order."""
    columns: list[Column] = [(f, s) for f in SCHEMES for s in ("tp", "fp", "fn")]
    columns += [(f"type/{t}", s) for t in types for s in ("tp", "fp", "fn")]
    columns += [("exact_match", k) for k in EXACT_MATCH]
    return columns


def evaluate(gold: Sequence[Document], pred: Sequence[Sequence[Span]]) -> SpanEvaluation:
    """Score predicted character spans against gold documents.

    Args:
        gold: the gold documents.
        pred: ``pred[i]`` are the spans predicted for ``gold[i]``, in any order; they may overlap.

    Returns:
        The evaluation; call :meth:`SpanEvaluation.metrics` for the scores.

    Raises:
        ValueError: lengths differ, a span lies outside its document's text, or an entity type is
            named like a summary key (``macro``, ``boundary``, ``overlap``, ``partial``).
    """
    preds = validate_predictions(gold, pred)
    rows = [document_counts(doc, p) for doc, p in zip(gold, preds)]
    types = types_of(gold, preds)
    check_type_names(types)
    columns = count_columns(types)
    counts = np.array([[row.get(c, 0.0) for c in columns] for row in rows], dtype=float)
    counts = counts.reshape(len(rows), len(columns))
    return SpanEvaluation([doc.id for doc in gold], types, columns, counts)


def token_accuracy(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Share of words whose predicted tag equals the gold tag, over all words of all sequences.

    Args:
        gold_tags: one tag sequence per sentence (or document).
        pred_tags: the predicted tag sequences, aligned with ``gold_tags``.

    Returns:
        The accuracy; 0 when there is no word.

    Raises:
        ValueError: the numbers of sequences, or the lengths of sequence ``i``, differ.
        TypeError: a sequence is a plain string (pass lists of tags, one list per sentence).
    """
    if len(gold_tags) != len(pred_tags):
        raise ValueError(f"{len(gold_tags)} gold tag sequences but {len(pred_tags)} predicted ones")
    correct = total = 0
    for i, (g, p) in enumerate(zip(gold_tags, pred_tags)):
        if isinstance(g, str) or isinstance(p, str):
            raise TypeError(
                f"tag sequence {i} is a string; pass one list of tags per sentence, e.g. [tags]"
            )
        if len(g) != len(p):
            raise ValueError(f"tag sequence {i}: {len(g)} gold tags but {len(p)} predicted tags")
        correct += sum(a == b for a, b in zip(g, p))
        total += len(g)
    return correct / total if total else 0.0
