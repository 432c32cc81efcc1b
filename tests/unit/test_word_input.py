"""Tokenizer settings for words split in advance, on folders of other encoder families."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioner.data.alignment.encoding import special_tokens
from bioner.errors import FormatError


def test_a_tokenizer_that_gives_no_sub_words_is_one_message(
    tmp_path: Path,
) -> None:
    # A vocabulary of special tokens only: every word vanishes.
    from transformers import RobertaTokenizer

    specials = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    tokenizer = RobertaTokenizer(vocab=specials, merges=[])
    tokenizer.name_or_path = str(tmp_path / "broken")
    with pytest.raises(FormatError, match=r"broken turns each of the words 'x', .* no sub-words"):
        special_tokens(tokenizer)
