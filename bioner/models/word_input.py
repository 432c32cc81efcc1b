"""Tokenizer settings that pre-split words need, whatever the checkpoint folder says.

bioner hands the tokenizer words (``is_split_into_words=True``), never running text. Two settings
decide whether those words get the sub-words the encoder was pretrained on:

* **Casing.** A BERT-style WordPiece tokenizer lower-cases when ``do_lower_case`` is on. Hub
  folders that ship only ``vocab.txt`` (BioBERT's) leave it to transformers' default, which
  lower-cases a cased vocabulary; the opposite, a cased setting on an uncased vocabulary (an
  uncased model loaded with a cased model's settings), turns every capitalised word into
  ``[UNK]``. The vocabulary itself says which it is: a cased one has entries with capitals.
* **A space before each word.** Byte-level BPE (RoBERTa, GPT-2, BART, Longformer) marks a word
  that follows a space with ``Ġ``; a pre-split word gets that mark only with
  ``add_prefix_space=True``, which RoBERTa's folders leave off. Without it every word is encoded
  as if glued to the one before ("reduces" as ``re`` ``duc`` ``es``, not ``Ġreduc`` ``es``).

:func:`word_input_settings` says what to change on a freshly loaded tokenizer;
:func:`check_casing` refuses the setting that would lose words, and :func:`check_vocabulary` a
tokenizer that knows no words at all (a folder without its tokenizer files, where transformers
builds a tokenizer of five special tokens and every word becomes ``[UNK]``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioner.errors import ConfigError, FormatError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# A vocabulary is cased when this share of its entries with lower-case letters have capitals too
# (BERT-base-cased: about a fifth), uncased below the second share (bert-base-uncased: 2 of
# 28,040, both symbols).
_CASED_SHARE = 0.02
_UNCASED_SHARE = 0.001
# Why word_input_settings changes each setting, for the log.
WHY = {
    "add_prefix_space": "byte-level BPE marks a word that follows a space, and words split in "
    "advance get the mark only so",
    "do_lower_case": "the vocabulary is cased, and the folder does not ask to lower-case",
}


def lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer lower-cases its input before splitting it into sub-words."""
    normalizer = tokenizer.backend_tokenizer.normalizer
    return normalizer is not None and normalizer.normalize_str("AB") == "ab"


def vocabulary_case(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """``"cased"`` or ``"uncased"`` by the vocabulary's entries, ``None`` when it cannot tell
    (few entries with letters, or a share in between)."""
    special = set(tokenizer.all_special_tokens)
    lower = upper = 0
    for entry in tokenizer.get_vocab():
        if entry in special:
            continue
        if any(c.islower() for c in entry):
            lower += 1
        if any(c.isupper() for c in entry):
            upper += 1
    if lower < 100:
        return None
    if upper >= _CASED_SHARE * lower:
        return "cased"
    if upper <= _UNCASED_SHARE * lower:
        return "uncased"
    return None


def _stated(path: str, key: str, revision: str | None = None) -> bool:
    """Whether the ``tokenizer_config.json`` of the folder (or of the hub model, from the local
    cache that loading the tokenizer just filled) sets ``key`` itself."""
    config = Path(path) / "tokenizer_config.json"
    if not config.is_file():
        from transformers.utils import cached_file

        try:
            found = cached_file(
                path,
                "tokenizer_config.json",
                revision=revision,
                local_files_only=True,
                _raise_exceptions_for_missing_entries=False,
            )
        except Exception:  # not a hub id, or not cached: nothing stated that can be read
            return False
        if not found:
            return False
        config = Path(found)
    try:
        return key in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _byte_level_steps(pre: dict[str, Any]) -> list[dict[str, Any]]:
    """The byte-level steps of a pre-tokenizer's JSON (itself, or in a ``Sequence``)."""
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    return [step for step in steps if step.get("type") == "ByteLevel"]


def lacks_prefix_space(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether a byte-level pre-tokenizer in the tokenizer leaves the first word unmarked."""
    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    return any(not step.get("add_prefix_space") for step in _byte_level_steps(pre))


def add_prefix_space(tokenizer: PreTrainedTokenizerBase) -> None:
    """Switch the prefix space on in the tokenizer's byte-level pre-tokenizer itself.

    For tokenizer classes that do not take ``add_prefix_space`` from ``from_pretrained``
    (the generic ``PreTrainedTokenizerFast`` of ModernBERT-style folders, transformers 5's
    ``TokenizersBackend``); ``save_pretrained`` then writes the setting into ``tokenizer.json``.
    """
    from tokenizers import Tokenizer

    backend = tokenizer.backend_tokenizer
    state = json.loads(backend.to_str())
    for step in _byte_level_steps(state.get("pre_tokenizer") or {}):
        step["add_prefix_space"] = True
    backend.pre_tokenizer = Tokenizer.from_str(json.dumps(state)).pre_tokenizer


def word_input_settings(
    tokenizer: PreTrainedTokenizerBase, path: str, given: Mapping[str, Any]
) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments that the tokenizer loaded from ``path`` needs for
    pre-split words, beyond those the user ``given`` (which always win).

    - ``add_prefix_space=True`` for a byte-level BPE tokenizer without it;
    - ``do_lower_case=False`` for a tokenizer that lower-cases a cased vocabulary where neither
      the user nor the folder's ``tokenizer_config.json`` asked for lower-casing (BioBERT's hub
      folders have no tokenizer config, and transformers' BERT default lower-cases).
    """
    settings: dict[str, Any] = {}
    if "add_prefix_space" not in given and lacks_prefix_space(tokenizer):
        settings["add_prefix_space"] = True
    if (
        hasattr(tokenizer, "do_lower_case")
        and "do_lower_case" not in given
        and not _stated(path, "do_lower_case", given.get("revision"))
        and lowercases(tokenizer)
        and vocabulary_case(tokenizer) == "cased"
    ):
        settings["do_lower_case"] = False
    return settings


def check_casing(
    tokenizer: PreTrainedTokenizerBase, path: str, name: str, given: Mapping[str, Any]
) -> None:
    """Refuse a tokenizer that keeps capitals in front of an uncased vocabulary, where the user
    asked for it; where the folder itself (or the class default) says so, warn: its authors may
    know better (a vocabulary of a script without case).

    Raises:
        ConfigError: every capitalised word would become ``[UNK]`` or odd pieces; the message
            says how to fix it.
    """
    if not hasattr(tokenizer, "do_lower_case") or lowercases(tokenizer):
        return
    if vocabulary_case(tokenizer) != "uncased":
        return
    if "do_lower_case" in given:
        source = "model.tokenizer_kwargs.do_lower_case=false"
    elif _stated(path, "do_lower_case", given.get("revision")):
        source = f"do_lower_case false in {Path(path) / 'tokenizer_config.json'}"
    else:
        source = f"the default of {type(tokenizer).__name__}"
    message = (
        f"encoder {name}: the vocabulary of {path} is uncased (hardly an entry with capitals), "
        f"but its tokenizer keeps capitals ({source}): every capitalised word would become "
        f"{tokenizer.unk_token} or odd pieces. Fix: model.tokenizer_kwargs.do_lower_case=true"
    )
    if "do_lower_case" in given:
        raise ConfigError(message + " (or null, to follow the folder, as model=hub does)")
    warnings.warn(message, stacklevel=3)


# Words every tokenizer of English or biomedical text has in its vocabulary.
_COMMON_WORDS = ("the", "of", "and", "in", "patients", "with")


def check_vocabulary(tokenizer: PreTrainedTokenizerBase, path: str, name: str) -> None:
    """Refuse a tokenizer that turns each of a few common words into its unknown token.

    Raises:
        FormatError: the message names the folder and the files it lacks.
    """
    unk = tokenizer.unk_token_id
    if unk is None:
        return
    enc = tokenizer(list(_COMMON_WORDS), is_split_into_words=True, add_special_tokens=False)
    if any(i != unk for i in enc["input_ids"]):
        return
    raise FormatError(
        f"encoder {name}: the tokenizer of {path} turns each of the words "
        f"{', '.join(_COMMON_WORDS)} into {tokenizer.unk_token} (its vocabulary has "
        f"{len(tokenizer)} entries): the folder lacks its tokenizer's files. Fix: add them beside "
        "config.json (tokenizer.json and tokenizer_config.json, or vocab.txt, or vocab.json and "
        "merges.txt, as tokenizer.save_pretrained(folder) writes them)"
    )
