"""Each boundary decision of the rule-based sentence splitter, one by one."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bioner.data.document import Span
from bioner.data.sentences import split_sentences


def sents(text: str, spans: Sequence[Span] = (), forced: Sequence[int] = ()) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, spans, forced)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # rule 1: terminator, whitespace, then upper case / digit / opening bracket
        ("It rose. Then it fell.", ["It rose.", "Then it fell."]),
        ("Really? Yes!  No.", ["Really?", "Yes!", "No."]),
        ("Dose was 5 mg. 10 patients left.", ["Dose was 5 mg.", "10 patients left."]),
        ("It was high. (See Table 1.)", ["It was high.", "(See Table 1.)"]),
        ("It was high. [12] Others", ["It was high.", "[12] Others"]),
        ("Wait... What?", ["Wait...", "What?"]),
        ("Finally (P = 0.06). Our data", ["Finally (P = 0.06).", "Our data"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("See (Fig. 2.) Next one", ["See (Fig. 2.)", "Next one"]),
        ("Patients with CF. Others", ["Patients with CF.", "Others"]),
        ("Line one.\nLine two.", ["Line one.", "Line two."]),
    ],
)
def test_boundary_is_made(text: str, expected: list[str]) -> None:
    assert sents(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "It rose. then it fell.",  # lower-case start
        "It rose.Then it fell.",  # no whitespace
        "The value 0.06 was low",  # decimal point
        "Drugs, e.g. Aspirin, help.",
        "Drugs, i.e. Aspirin, help.",
        "Aspirin vs. Placebo trial",
        "Aspirin v. Placebo trial",
        "Seen by Dr. Smith today",
        "The St. Anthony fire",
        "As shown in Fig. 2 here",
        "As shown in (Fig. 2) here",
        "Reported by Smith et al. The cohort",
        "It took approx. 5 min",
        "Patient no. 5 here",
        "Written by J. Smith here",
        "Written by J.R. Smith here",
        "Made in the U.S. Army lab",
        "Line one\nLine two",  # a single line break is ordinary whitespace
    ],
)
def test_boundary_is_not_made(text: str) -> None:
    assert sents(text) == [text]


def test_blank_line_always_splits() -> None:
    assert sents("A title\n\nbody text starts here") == ["A title", "body text starts here"]
    assert sents("one\n  \t\n\ntwo") == ["one", "two"]


def test_forced_boundary_splits_without_punctuation() -> None:
    text = "A title without a stop Abstract begins"
    assert sents(text, forced=[22]) == ["A title without a stop", "Abstract begins"]
    assert sents(text, forced=[0, len(text)]) == [text]  # forced at the ends changes nothing


def test_a_boundary_inside_a_gold_span_is_not_made() -> None:
    text = "It rose. Then it fell. Again."
    span = Span(3, 13, "X")  # "rose. Then"
    assert sents(text, [span]) == ["It rose. Then it fell.", "Again."]
    blank = "first part\n\nsecond part"
    assert sents(blank, [Span(6, 18, "X")]) == [blank]


def test_a_span_ending_at_the_boundary_does_not_block_it() -> None:
    text = "It rose. Then it fell."
    assert sents(text, [Span(3, 8, "X"), Span(9, 13, "Y")]) == ["It rose.", "Then it fell."]


def test_by_line_splits_at_each_line_break_and_only_there() -> None:
    text = "It rose. Then it fell\r\nsecond line\n\n  third. Line\nend"
    assert [text[s:e] for s, e in split_sentences(text, by_line=True)] == [
        "It rose. Then it fell",  # no rule splits inside a line; the \r is trimmed
        "second line",
        "third. Line",
        "end",
    ]
    # A span across a line break joins the two lines; a forced boundary still splits.
    crossing = Span(text.index("fell"), text.index("second") + 6, "X")
    got = split_sentences(text, [crossing], forced=[3], by_line=True)
    assert [text[s:e] for s, e in got][:3] == [
        "It",
        "rose. Then it fell\r\nsecond line",
        "third. Line",
    ]


def test_forced_boundary_inside_a_span_is_an_error() -> None:
    with pytest.raises(ValueError, match="inside a span"):
        split_sentences("Title Abstract", [Span(0, 14, "X")], forced=[5])
    with pytest.raises(ValueError, match="outside the text"):
        split_sentences("Title", forced=[9])


def test_sentences_are_trimmed_and_cover_every_non_space_character() -> None:
    text = "  One here.   Two there.  \n\n  Three. "
    ranges = split_sentences(text)
    assert [text[s:e] for s, e in ranges] == ["One here.", "Two there.", "Three."]
    covered = {i for s, e in ranges for i in range(s, e)}
    assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered
    assert split_sentences(" \n ") == []
