"""The offset-keeping word tokenizer and its refinement at gold span boundaries."""

from __future__ import annotations

import pytest

from bioner.data.tokenize import split_at, word_ranges


def words(text: str, *args: int) -> list[str]:
    return [text[s:e] for s, e in word_ranges(text, *args)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Aspirin reduces pain.", ["Aspirin", "reduces", "pain", "."]),
        ("5-HT6 receptor", ["5", "-", "HT6", "receptor"]),
        ("(n=12; 7.5%)", ["(", "n", "=", "12", ";", "7", ".", "5", "%", ")"]),
        ("α-synuclein and IL‐6", ["α", "-", "synuclein", "and", "IL", "‐", "6"]),
        ("snake_case", ["snake", "_", "case"]),
        ("  \t\n ", []),
        ("", []),
    ],
)
def test_word_ranges_runs_of_letters_and_digits_and_single_punctuation(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Naloxone reverses the antihypertensive effect of clonidine.",
        "5-HT6 receptor (n=12; 7.5%) in rats' hearts, snake_case",
        # Decomposed accents (NFD) stay in their word: "Barré", not "Barre" and a lone accent.
        "Guillain-Barre\u0301 syndrome and Me\u0301nie\u0300re's disease",
        "\u0928\u093f\u0930 \u0301x",  # an Indic vowel sign; a mark that starts a word
    ],
)
def test_word_ranges_are_bert_s_pre_tokens(text: str) -> None:
    from tokenizers.pre_tokenizers import BertPreTokenizer

    bert = BertPreTokenizer().pre_tokenize_str(text)
    assert word_ranges(text) == [offsets for _, offsets in bert]


def test_word_ranges_cover_every_non_space_character_once() -> None:
    text = "Na+/K+-ATPase,  e.g. 2'-O-methyl\u00a0RNA\r\n(Fig. 3B)."
    ranges = word_ranges(text)
    covered = [i for s, e in ranges for i in range(s, e)]
    assert covered == [i for i, ch in enumerate(text) if not ch.isspace()]
    assert all(s < e for s, e in ranges)


def test_word_ranges_window_gives_absolute_offsets() -> None:
    text = "Title here. Abstract text"
    assert word_ranges(text, 12) == [(12, 20), (21, 25)]
    assert word_ranges(text, 0, 10) == [(0, 5), (6, 10)]
    assert words(text, 14, 22) == ["stract", "t"]  # a window may cut words; callers choose it


def test_split_at_cuts_inside_words_only() -> None:
    text = "DA1 and 5-HT6"
    ws = word_ranges(text)
    # gold "DA" (0, 2) inside "DA1"; gold "5-HT" (8, 12) ends inside "HT6"
    refined = split_at(ws, [0, 2, 8, 12])
    assert [text[s:e] for s, e in refined] == ["DA", "1", "and", "5", "-", "HT", "6"]


def test_split_at_ignores_edges_whitespace_and_duplicates() -> None:
    ws = [(0, 3), (4, 7)]
    assert split_at(ws, [0, 3, 3, 4, 7, 100]) == ws
    assert split_at(ws, []) == ws


def test_split_at_several_cuts_in_one_word_in_any_order() -> None:
    assert split_at([(10, 20)], [17, 12, 15, 12]) == [(10, 12), (12, 15), (15, 17), (17, 20)]
