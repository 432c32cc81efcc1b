"""The span-preserving edit core: spans, words and sentences remapped exactly; bad edits refused."""

from __future__ import annotations

import numpy as np
import pytest

from bioner.augment import Edit, EditError, apply_edits, from_marked, mark
from bioner.data.document import Document, Span

# Two spaces between the sentences, so that an offset lies between them.
MARKED = (
    "[Aspirin|Chemical] caused acute [renal failure|Disease] in rats.  Then [DA|Chemical]1 rose."
)


@pytest.fixture
def doc() -> Document:
    return from_marked(MARKED)


def pos(doc: Document, surface: str, nth: int = 0) -> int:
    start = -1
    for _ in range(nth + 1):
        start = doc.text.index(surface, start + 1)
    return start


def words_of(doc: Document) -> list[str]:
    return [doc.text[s:e] for s, e in doc.words]


def test_no_edits_copies_the_document(doc):
    result = apply_edits(doc, [])
    assert result.n_edits == 0
    assert result.document == doc and result.document is not doc
    assert result.document.spans is not doc.spans


def test_outside_replacement_shifts_later_spans_and_keeps_their_text(doc):
    p = pos(doc, "acute")
    result = apply_edits(doc, [Edit(p, p + len("acute"), "very severe")])
    new = result.document
    assert new.text == doc.text.replace("acute", "very severe")
    assert [s.text(new.text) for s in new.spans] == ["Aspirin", "renal failure", "DA"]
    assert new.spans[0] == doc.spans[0]
    assert new.spans[1].start == doc.spans[1].start + len("very severe") - len("acute")
    assert words_of(new)[:5] == ["Aspirin", "caused", "very", "severe", "renal"]
    assert result.changed_spans() == [False, False, False]
    assert [a for a, _ in result.span_pairs()] == doc.spans


def test_edits_inside_a_span_change_only_that_span(doc):
    p = pos(doc, "renal")
    # "renal" -> "reenal" (insert), "failure" -> "failre" (drop "u")
    q = pos(doc, "failure") + 4
    result = apply_edits(doc, [Edit(p + 1, p + 2, "ee"), Edit(q, q + 1, "")])
    new = result.document
    assert [s.text(new.text) for s in new.spans] == ["Aspirin", "reenal failre", "DA"]
    assert result.changed_spans() == [False, True, False]
    assert new.spans[2].start == doc.spans[2].start  # +1 and -1 cancel out


def test_whole_span_replacement_is_resegmented(doc):
    span = doc.spans[0]
    new = apply_edits(doc, [Edit(span.start, span.end, "acetylsalicylic acid")]).document
    assert new.spans[0] == Span(0, len("acetylsalicylic acid"), "Chemical")
    assert words_of(new)[:3] == ["acetylsalicylic", "acid", "caused"]
    assert mark(new).startswith("[acetylsalicylic acid|Chemical] caused acute [renal failure|")


def test_insertion_at_span_edges_goes_outside_and_strictly_inside_goes_inside(doc):
    span = doc.spans[1]  # "renal failure"
    edits = [Edit(span.start, span.start, "x "), Edit(span.end, span.end, " y")]
    new = apply_edits(doc, edits).document
    assert new.spans[1].text(new.text) == "renal failure"
    assert "x renal failure y in" in new.text
    inside = apply_edits(doc, [Edit(span.start + 5, span.start + 5, "-ish")]).document
    assert inside.spans[1].text(inside.text) == "renal-ish failure"
    assert words_of(inside)[3:7] == ["renal", "-", "ish", "failure"]


def test_span_inside_a_token_keeps_its_boundary_when_the_token_is_edited(doc):
    # "DA" is annotated inside "DA1"; an edit of the "1" must not merge the words.
    p = pos(doc, "DA1") + 2
    new = apply_edits(doc, [Edit(p, p + 1, "12")]).document
    assert new.spans[2].text(new.text) == "DA"
    assert "DA" in words_of(new) and "12" in words_of(new)


def test_untouched_words_keep_their_segmentation():
    # Words that word_ranges would split ("5-HT6" is one IOB token) survive unless edited.
    text = "5-HT6 binds serotonin ."
    doc = Document("iob", text, [Span(0, 5, "Gene")], [(0, len(text))], [(0, 5), (6, 11),
                   (12, 21), (22, 23)])  # fmt: skip
    doc.validate()
    new = apply_edits(doc, [Edit(6, 11, "bound")]).document
    assert words_of(new) == ["5-HT6", "bound", "serotonin", "."]
    touched = apply_edits(doc, [Edit(0, 1, "7")]).document
    assert words_of(touched)[:3] == ["7", "-", "HT6"]
    assert touched.spans == [Span(0, 5, "Gene")]


def test_sentences_are_remapped_and_insertions_at_their_edges_belong_to_them(doc):
    s0, s1 = doc.sentences
    new = apply_edits(doc, [Edit(s1[0], s1[0], "And "), Edit(s0[1], s0[1], "!")]).document
    assert [new.text[s:e] for s, e in new.sentences] == [
        "Aspirin caused acute renal failure in rats.!",
        "And Then DA1 rose.",
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: Edit(3, 9, "x"), "crosses the boundary of span"),
        (lambda d: Edit(0, 200, ""), "out of range"),
        (lambda d: Edit(0, 7, ""), "must keep at least one character"),
        (lambda d: Edit(0, 7, " aspirin"), "no edge whitespace"),
        (
            lambda d: Edit(pos(d, "rats"), pos(d, "Then") + 4, ""),
            "does not lie inside one sentence",
        ),
        (lambda d: Edit(pos(d, "Then") - 1, pos(d, "Then") - 1, "x"), "inside one sentence"),
    ],
    ids=["crosses-span", "out-of-range", "empties-span", "edge-space", "two-sentences", "between"],
)
def test_bad_edits_are_refused_with_the_document_named(doc, make, message):
    with pytest.raises(EditError, match=message) as err:
        apply_edits(doc, [make(doc)])
    assert "document doc" in str(err.value)


def test_overlapping_edits_and_double_insertions_are_refused(doc):
    with pytest.raises(EditError, match="overlaps"):
        apply_edits(doc, [Edit(8, 12, "a"), Edit(10, 14, "b")])
    with pytest.raises(EditError, match="overlaps"):
        apply_edits(doc, [Edit(8, 8, "a"), Edit(8, 8, "b")])
    # Touching is fine: an insertion right where a replacement ends.
    new = apply_edits(doc, [Edit(8, 14, "led to"), Edit(14, 14, ",")]).document
    assert new.text.startswith("Aspirin led to, acute")


def _random_edits(doc: Document, rng: np.random.Generator) -> list[Edit]:
    """Non-overlapping edits inside spans or outside them, each inside a sentence."""
    alphabet = list("abXY -.,1")
    edits, cursor = [], 0
    for s, e in doc.sentences:
        cursor = max(cursor, s)
        while cursor < e:
            a = int(rng.integers(cursor, e + 1))
            b = int(rng.integers(a, min(e, a + 4) + 1))
            new = "".join(rng.choice(alphabet, size=int(rng.integers(0, 4))))
            span = next((sp for sp in doc.spans if sp.start < b and a < sp.end), None)
            if span is not None:  # keep the edit inside the span, and the span non-blank
                a, b = max(a, span.start), min(b, span.end)
                new = new.replace(" ", "")
                if a == span.start or b == span.end:
                    new = new.strip(" -.,") or "z"
            if a == b and not new:
                new = "q"
            edits.append(Edit(a, b, new))
            cursor = b + 1
    return edits


def _expected_span_text(doc: Document, span: Span, edits: list[Edit]) -> str:
    """A span's text after the edits that lie inside it, worked out on the span alone."""
    text = span.text(doc.text)
    for ed in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        inside = span.start <= ed.start and ed.end <= span.end
        if ed.start == ed.end:
            inside = span.start < ed.start < span.end
        if inside:
            a, b = ed.start - span.start, ed.end - span.start
            text = text[:a] + ed.new + text[b:]
    return text


def test_random_edits_keep_every_span_exact():
    docs = [
        from_marked(MARKED),
        from_marked("[IL-2|Gene] and [TNF alpha|Gene] rise in [lung cancer|Disease] [cells|Cell]."),
        from_marked("No entities at all here. None. [X|T]"),
    ]
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        doc = docs[int(rng.integers(len(docs)))]
        edits = _random_edits(doc, rng)
        try:
            result = apply_edits(doc, edits)
        except EditError as err:
            # Only the documented refusals: a span or a sentence left without text.
            assert "a span must keep" in str(err) or "without any text" in str(err)
            continue
        new = result.document
        pieces, prev = [], 0
        for ed in sorted(edits, key=lambda e: (e.start, e.end)):
            pieces += [doc.text[prev : ed.start], ed.new]
            prev = ed.end
        assert new.text == "".join(pieces) + doc.text[prev:]
        for old, span in result.span_pairs():
            assert span.label == old.label
            assert span.text(new.text) == _expected_span_text(doc, old, edits)
        checked += 1
    assert checked > 200


def test_edits_inside_nested_spans_keep_them_and_crossing_an_outer_one_is_refused():
    #             0         1         2
    #             0123456789012345678901234567
    base = from_marked("left breast cancer surgery helped.")
    outer, disease, organ = Span(0, 26, "Procedure"), Span(5, 18, "Disease"), Span(5, 11, "Organ")
    doc = Document(base.id, base.text, [outer, organ, disease], base.sentences, base.words)
    doc.validate()
    new = apply_edits(doc, [Edit(12, 18, "tumour")]).document  # inside outer and disease
    assert [s.text(new.text) for s in new.spans] == [
        "left breast tumour surgery",
        "breast",
        "breast tumour",
    ]
    # Past the nested spans, but across the outer span's end: the nearest spans do not show it.
    with pytest.raises(EditError, match=r"crosses the boundary of span Span\(start=0, end=26"):
        apply_edits(doc, [Edit(19, 33, "x")])
