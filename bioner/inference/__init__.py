"""Inference: raw text to spans (:class:`Tagger`), input readers, output formats, export.

``Tagger`` is imported lazily (it needs torch and transformers), so ``bioner.inference.formats``
and ``bioner.inference.inputs`` stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bioner.inference.tagger import Tagger

__all__ = ["Tagger"]


def __getattr__(name: str) -> Any:
    if name == "Tagger":
        from bioner.inference.tagger import Tagger

        return Tagger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
