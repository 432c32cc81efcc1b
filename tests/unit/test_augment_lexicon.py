"""Lexicon files: the shipped lexicon, both column meanings, errors naming file and line."""

from __future__ import annotations

import pytest

from bioner.augment import Lexicon, default_synonyms_path, read_pairs
from bioner.data.errors import CorpusFormatError


def write(tmp_path, content: str | bytes):
    path = tmp_path / "lexicon.tsv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_shipped_lexicon_is_a_few_hundred_well_formed_pairs():
    path = default_synonyms_path()
    assert path.is_file() and path.parent.name == "resources"
    pairs = read_pairs(path)
    assert 300 <= len(pairs) <= 1000
    assert len({(a, b) for a, b, _ in pairs}) == len(pairs)  # no duplicate lines
    lexicon = Lexicon.default()
    assert list(lexicon.lookup("patients")) == ["subjects"]
    assert "patients" in lexicon.lookup("subjects")  # symmetric
    assert lexicon.lookup("aspirin") == ()


def test_synonym_pairs_comments_crlf_and_bom(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf# a comment\r\nrats\trodents\r\n\r\nheart attack\tMI\r\n")
    lexicon = Lexicon.from_tsv(path)
    assert list(lexicon.lookup("Rats")) == ["rodents"]
    assert list(lexicon.lookup("heart   ATTACK")) == ["MI"]
    assert list(lexicon.lookup("mi")) == ["heart attack"]
    assert lexicon.max_words == 2
    one_way = Lexicon.from_tsv(path, symmetric=False)
    assert one_way.lookup("rodents") == ()


def test_concept_ids_group_surfaces_and_are_never_synonyms(tmp_path):
    path = write(tmp_path, "heart attack\tD009203\nMI\tD009203\nstroke\tD020521\n")
    lexicon = Lexicon.from_tsv(path, second_column="concept")
    assert sorted(lexicon.lookup("heart attack")) == ["MI"]
    assert lexicon.lookup("stroke") == ()  # alone in its concept
    assert lexicon.lookup("D009203") == ()
    with pytest.raises(ValueError, match="second_column"):
        Lexicon.from_tsv(path, second_column="cui")


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        ("rats\trodents\nmice rodents\n", 2, "expected 2 tab-separated fields, found 1"),
        ("# c\nrats\trodents\tanimals\n", 2, "found 3"),
        ("rats\t \n", 1, "empty field"),
        ("ok\tfine\n\nRats\trats\n", 3, "its own synonym"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path, content, line, problem):
    path = write(tmp_path, content)
    with pytest.raises(CorpusFormatError, match=problem) as err:
        Lexicon.from_tsv(path)
    assert err.value.line == line
    assert f"{path}:{line}" in str(err.value)
    assert "Fix:" in str(err.value)


def test_empty_and_comment_only_files_are_errors(tmp_path):
    with pytest.raises(CorpusFormatError, match="empty"):
        read_pairs(write(tmp_path, ""))
    with pytest.raises(CorpusFormatError, match="holds no pairs"):
        read_pairs(write(tmp_path, "# nothing here\n"))
    with pytest.raises(FileNotFoundError, match="not found"):
        read_pairs(tmp_path / "missing.tsv")
