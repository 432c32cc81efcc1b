"""Windows over a unit longer than the encoder accepts: planning them (:func:`plan_windows`) and
merging the logits of overlapping windows back into one row per sub-word (:func:`unit_rows`).

The rules (overlap, word boundaries, which window a word is read from) are in the package
docstring, :mod:`bioner.data.alignment`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from bioner.data.alignment.feature import Feature

# Context of a word at the unit's own start or end: nothing was cut there.
_FULL_CONTEXT = 1 << 30


def plan_windows(
    word_starts: Sequence[int], n: int, size: int, stride: int
) -> list[tuple[int, int]]:
    """Cover ``n`` sub-words with windows of at most ``size`` sub-words.

    Args:
        word_starts: sub-word position where each word starts (sorted, first is 0).
        n: number of sub-words.
        size: the most sub-words one window holds (special tokens excluded).
        stride: wanted overlap between consecutive windows, capped at ``size // 2``.

    Returns:
        Half-open ``(start, end)`` sub-word ranges, in order, covering ``0 .. n``.
    """
    if size < 1:
        raise ValueError(f"a window must hold at least one sub-word, not {size}")
    if n <= size:
        return [(0, n)]
    overlap = min(stride, size // 2)
    bounds = list(word_starts) + [n]
    windows = []
    start = 0
    while start + size < n:
        limit = start + size
        end = bounds[bisect_right(bounds, limit) - 1]
        if end <= start:  # the word at `start` is longer than a window: split it
            end = limit
        windows.append((start, end))
        # The next window must reach past `end` (else it would hold nothing new), unless the
        # word after `end` is longer than a window anyway; it must not leave a gap either.
        after = bounds[bisect_right(bounds, end)]
        lower = max(start + 1, min(after - size, end))
        target = max(end - overlap, lower)
        # The latest word start in [lower, target] gives at least `overlap` sub-words overlap;
        # failing that the first word start after `target`; failing that (inside a word longer
        # than a window) `target` itself.
        i = bisect_right(word_starts, target) - 1
        if i >= 0 and word_starts[i] >= lower:
            start = word_starts[i]
        else:
            i = bisect_right(word_starts, target)
            start = word_starts[i] if i < len(word_starts) and word_starts[i] <= end else target
    windows.append((start, n))
    return windows


def unit_rows(items: list[tuple[Feature, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Logit rows of one unit's sub-words in order, each from its best window, and their words."""
    windows = []
    for feature, array in items:
        content = np.array([k for k, w in enumerate(feature.word_ids) if w is not None])
        words = np.array([feature.word_ids[k] for k in content], dtype=np.int64)
        windows.append((feature.offset, words, array[content]))
    if len(windows) == 1 and windows[0][0] == 0:
        _, words, rows = windows[0]
        return rows, words
    n = max(offset + len(words) for offset, words, _ in windows)
    word_of = np.full(n, -1, dtype=np.int64)
    for offset, words, _ in windows:
        seen = word_of[offset : offset + len(words)]
        if np.any((seen >= 0) & (seen != words)):
            raise ValueError("features of one unit disagree on which word a sub-word belongs to")
        word_of[offset : offset + len(words)] = words
    if np.any(word_of < 0):
        raise ValueError("the features of a unit leave some of its sub-words uncovered")
    first_word = int(word_of[0])
    local = word_of - first_word
    total = np.bincount(local)
    best_ctx = np.full(len(total), -1, dtype=np.int64)
    best_win = np.full(len(total), -1, dtype=np.int64)
    for j, (offset, words, _) in enumerate(windows):
        end = offset + len(words)
        lw = words - first_word
        ids, first_pos, count = np.unique(lw, return_index=True, return_counts=True)
        whole = count == total[ids]
        last_pos = first_pos + count - 1
        left = first_pos if offset > 0 else np.full(len(ids), _FULL_CONTEXT)
        right = len(words) - 1 - last_pos if end < n else np.full(len(ids), _FULL_CONTEXT)
        ctx = np.where(whole, np.minimum(left, right), -1)
        better = ctx > best_ctx[ids]  # strict: ties go to the earlier window
        best_ctx[ids[better]] = ctx[better]
        best_win[ids[better]] = j
    rows = np.zeros((n, windows[0][2].shape[1]))
    split = best_win[local] < 0  # sub-words of words no window holds whole
    pos_ctx = np.full(n, -1, dtype=np.int64)
    for j, (offset, words, array) in enumerate(windows):
        end = offset + len(words)
        pos = np.arange(offset, end)
        take = best_win[words - first_word] == j
        rows[pos[take]] = array[take]
        k = np.arange(len(words))
        left = k if offset > 0 else np.full(len(k), _FULL_CONTEXT)
        right = len(words) - 1 - k if end < n else np.full(len(k), _FULL_CONTEXT)
        ctx = np.minimum(left, right)
        take = split[pos] & (ctx > pos_ctx[pos])
        rows[pos[take]] = array[take]
        pos_ctx[pos[take]] = ctx[take]
    return rows, word_of
