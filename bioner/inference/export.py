"""Exporting a trained tagger as a Hugging Face model folder.

The folder holds ``config.json`` (with ``id2label``), the weights and the tokenizer, so
``transformers.pipeline("token-classification", model=folder)`` loads it with no bioner code;
``bioner.json`` records how bioner encoded and decoded (alignment, entity types) for tools that
want bioner's own word-level decoding back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

METADATA_FILE = "bioner.json"


def export_pretrained(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    path: str | Path,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` and ``tokenizer`` with ``save_pretrained`` into ``path``.

    Args:
        model: a token-classification model whose config carries the real ``id2label``.
        tokenizer: its tokenizer.
        path: the output folder (created; existing files are overwritten).
        metadata: JSON-serialisable extras written to ``bioner.json``.

    Raises:
        ValueError: the model's labels are transformers' placeholders (``LABEL_0`` ...), which
            would make the exported pipeline's output meaningless.

    Returns:
        The folder.
    """
    labels = dict(model.config.id2label)
    if not labels or all(str(v) == f"LABEL_{k}" for k, v in labels.items()):
        raise ValueError(
            "the model config has no real id2label; build the model with "
            "Encoder.load_model(id2label) so the exported pipeline names the entity types"
        )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    if metadata is not None:
        (path / METADATA_FILE).write_text(json.dumps(dict(metadata), indent=2) + "\n")
    return path
