"""A model input (:class:`Feature`) and the label ids no loss or metric reads."""

from __future__ import annotations

from dataclasses import dataclass

# The label of a position no loss or metric looks at (special tokens, non-first sub-words);
# -100 is the ignore_index of torch.nn.functional.cross_entropy.
IGNORE_INDEX = -100
# transformers' "no limit" sentinel for model_max_length is 1e30; anything this large is unset.
UNSET_MAX_LENGTH = 100_000


@dataclass(slots=True)
class Feature:
    """One model input: a window of one unit's sub-words between the tokenizer's special tokens.

    Attributes:
        input_ids: sub-word ids, special tokens included.
        labels: training label id per sub-word, ``-100`` where ignored and on special tokens
            (``head="multilabel"``: a tuple of one id per layer); ``None`` when encoded without
            labels.
        word_ids: index into ``doc.words`` of each sub-word, ``None`` on special tokens.
        unit: index of the unit (sentence index, or 0 for ``unit="document"``).
        window: index of the window within its unit.
        offset: position of the window's first sub-word in its unit's sub-word sequence.
        group: for a document whose corpus annotates only some types (``dataset=multi``), the
            1-based index of its type set in the datamodule's annotation groups (the collator's
            :attr:`~bioner.data.batching.Collator.unannotated` row); 0: every type annotated.
    """

    input_ids: list[int]
    labels: list[int] | None
    word_ids: list[int | None]
    unit: int
    window: int
    offset: int = 0
    group: int = 0
