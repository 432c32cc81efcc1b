"""Tokenizer settings for words split in advance, on folders of other encoder families."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from bioner.data.alignment.encoding import special_tokens
from bioner.errors import ConfigError, FormatError
from bioner.models.encoders import HubEncoder
from bioner.models.word_input import lowercases, vocabulary_case

WORDS = ["Aspirin", "reduces", "Fever", "."]


def pieces(tokenizer, words=WORDS) -> list[list[str]]:
    """The sub-words of each word, as the tokenizer gives them for words split in advance."""
    enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    out: list[list[str]] = [[] for _ in words]
    for token, word in zip(enc.tokens(), enc.word_ids(), strict=True):
        out[word].append(token)
    return out


def running_text_pieces(tokenizer, words=WORDS) -> list[list[str]]:
    """The sub-words of each word in running text (words joined by spaces)."""
    text = " ".join(words)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    out: list[list[str]] = [[] for _ in words]
    for token, (start, end) in zip(enc.tokens(), enc["offset_mapping"], strict=True):
        word = max(i for i, s in enumerate(starts) if s <= max(start, end - 1))
        out[word].append(token)
    return out


def test_byte_level_bpe_gets_the_space_mark_of_running_text(roberta_model_dir: Path) -> None:
    # As the hub ships it (add_prefix_space false), each pre-split word is encoded as if glued
    # to the one before: no "Ġ" word-start mark, pieces RoBERTa rarely saw in pretraining.
    plain = AutoTokenizer.from_pretrained(roberta_model_dir)
    assert not any(p[0].startswith("Ġ") for p in pieces(plain))

    tokenizer = HubEncoder(str(roberta_model_dir)).load_tokenizer()
    assert all(p[0].startswith("Ġ") for p in pieces(tokenizer))
    # ... the pieces the words have in running text (the first word too: the pipeline's
    # tokenizer, saved with add_prefix_space, puts a space before it).
    assert pieces(tokenizer) == running_text_pieces(tokenizer)
    assert special_tokens(tokenizer) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])


def test_a_generic_tokenizer_class_gets_the_space_mark_too(
    roberta_model_dir: Path, tmp_path: Path
) -> None:
    # ModernBERT-style folders save the generic class, which ignores add_prefix_space given to
    # from_pretrained: the setting goes into its pre-tokenizer itself, and into what it saves.
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "generic"
    shutil.copytree(roberta_model_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    backend = Tokenizer.from_file(str(roberta_model_dir / "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    PreTrainedTokenizerFast(tokenizer_object=backend, **specials).save_pretrained(folder)
    assert not any(p[0].startswith("Ġ") for p in pieces(AutoTokenizer.from_pretrained(folder)))

    tokenizer = HubEncoder(str(folder)).load_tokenizer()
    assert all(p[0].startswith("Ġ") for p in pieces(tokenizer))
    tokenizer.save_pretrained(tmp_path / "saved")
    assert AutoTokenizer.from_pretrained(tmp_path / "saved").tokenize("Aspirin")[0][0] == "Ġ"


def test_add_prefix_space_given_by_the_user_wins(roberta_model_dir: Path) -> None:
    encoder = HubEncoder(str(roberta_model_dir), tokenizer_kwargs={"add_prefix_space": False})
    assert not any(p[0].startswith("Ġ") for p in pieces(encoder.load_tokenizer()))


def test_an_exported_folder_s_tokenizer_loads_as_saved(roberta_model_dir: Path) -> None:
    # The tagger's way (as_saved): a folder exported by a bioner without these settings tags
    # with the tokenizer its training used.
    encoder = HubEncoder(str(roberta_model_dir), as_saved=True)
    assert not any(p[0].startswith("Ġ") for p in pieces(encoder.load_tokenizer()))


def test_a_cased_vocabulary_without_tokenizer_config_keeps_case(cased_vocab_dir: Path) -> None:
    # transformers' BERT default lower-cases: the BioBERT hub folders' old trap.
    plain = AutoTokenizer.from_pretrained(cased_vocab_dir)
    assert lowercases(plain) and vocabulary_case(plain) == "cased"

    tokenizer = HubEncoder(str(cased_vocab_dir)).load_tokenizer()
    assert not lowercases(tokenizer)
    assert pieces(tokenizer)[0][0].startswith("A")
    # Asked for, lower-casing stays (null in a model config means "not asked").
    asked = HubEncoder(str(cased_vocab_dir), tokenizer_kwargs={"do_lower_case": True})
    assert lowercases(asked.load_tokenizer())
    left = HubEncoder(str(cased_vocab_dir), tokenizer_kwargs={"do_lower_case": None})
    assert not lowercases(left.load_tokenizer())


def test_a_folder_that_states_lower_casing_is_followed(
    cased_vocab_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "stated"
    shutil.copytree(cased_vocab_dir, folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    assert lowercases(HubEncoder(str(folder)).load_tokenizer())


def test_an_uncased_vocabulary_that_keeps_capitals_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # The tiny BERT's vocabulary is MiniLM's, uncased: kept capitals become [UNK].
    assert vocabulary_case(AutoTokenizer.from_pretrained(tiny_model_dir)) == "uncased"
    given = HubEncoder(str(tiny_model_dir), tokenizer_kwargs={"do_lower_case": False})
    with pytest.raises(ConfigError, match=r"uncased.*do_lower_case=false.*\[UNK\].*=true"):
        given.load_tokenizer()
    # The same setting in the folder's own tokenizer config: its authors may know better (a
    # script without case), so a warning.
    folder = tmp_path / "uncased"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    with pytest.warns(UserWarning, match=r"do_lower_case false in .*tokenizer_config.json"):
        HubEncoder(str(folder)).load_tokenizer()
    # And left to the folder as shipped, it lower-cases.
    assert lowercases(HubEncoder(str(tiny_model_dir)).load_tokenizer())


def test_a_tokenizer_that_gives_no_sub_words_is_one_message(
    tmp_path: Path,
) -> None:
    # A vocabulary of special tokens only: every word vanishes.
    from transformers import RobertaTokenizer

    specials = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    (tmp_path / "vocab.json").write_text(json.dumps(specials))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    tokenizer.name_or_path = str(tmp_path / "broken")
    with pytest.raises(FormatError, match=r"broken turns each of the words 'x', .* no sub-words"):
        special_tokens(tokenizer)


def test_a_hub_model_s_tokenizer_config_counts_as_stated(
    cased_vocab_dir: Path, tmp_path: Path
) -> None:
    # A hub id loads from the cache: its tokenizer_config.json is there, not beside a path.
    import os
    import subprocess
    import sys

    snapshot = tmp_path / "hub" / "models--test--cased" / "snapshots" / "abc"
    shutil.copytree(cased_vocab_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    code = (
        "from bioner.models.encoders import HubEncoder\n"
        "from bioner.models.word_input import lowercases\n"
        "print(lowercases(HubEncoder('test/cased').load_tokenizer()))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_a_tokenizer_without_a_padding_token_names_the_fix(
    roberta_model_dir: Path, tmp_path: Path
) -> None:
    # GPT-2's kind: bioner pads batches, and a decoder-only tokenizer has no padding token.
    folder = tmp_path / "gpt2-like"
    shutil.copytree(roberta_model_dir, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "GPT2Tokenizer"
    config.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(FormatError, match=r"""no padding token .* "\+model.tokenizer_kwargs.pad"""):
        HubEncoder(str(folder)).load_tokenizer()
    given = HubEncoder(str(folder), tokenizer_kwargs={"pad_token": "</s>"}).load_tokenizer()
    assert given.pad_token == "</s>"
