"""Decoding for the ``crf`` head: the tag transitions a model learned, the transitions a tagging
scheme allows, and Viterbi decoding with per-word marginal probabilities, in numpy.

The network's outputs are read as *emission* scores of each word's tags (at the sub-word its
label strategy trains); a linear-chain CRF adds a learned score for each pair of consecutive tags
and for the tag that starts and ends a unit. The best tag sequence of a unit is the Viterbi path
over the allowed transitions, so a ``crf`` model never predicts ``O I-X`` or ``B-X I-Y``; a
word's confidence is the marginal probability of its tag on that path (forward-backward).

Training (:class:`bioner.models.crf.CRF`) learns the same four arrays that a :class:`Transitions`
holds here; ``bioner-train`` writes them into ``bioner.json`` as plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bioner.data.tags import split_tag
from bioner.errors import ConfigError


def allowed_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """See :func:`_allowed` (cached per tag list; the arrays are read-only)."""
    return _allowed(tuple(tags))


@lru_cache(maxsize=64)
def _allowed(tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tag may follow which, which may start a unit and which may end one.

    The scheme is read from the tags: ``E-``/``S-`` tags mean IOBES, else IOB2. IOB2: ``I-X``
    follows only ``B-X`` or ``I-X`` and does not start a unit. IOBES: after ``B-X``/``I-X``
    comes ``I-X`` or ``E-X``, after ``O``/``E-``/``S-`` comes ``O``, ``B-`` or ``S-``; a unit
    starts with ``O``, ``B-`` or ``S-`` and ends with ``O``, ``E-`` or ``S-``.

    Returns:
        ``pairs[i, j]`` (tag ``j`` may follow tag ``i``), ``start[j]``, ``end[i]``: booleans.
    """
    parsed = [split_tag(t) for t in tags]
    iobes = any(p in ("E", "S") for p, _ in parsed)
    n = len(parsed)
    pairs = np.zeros((n, n), dtype=bool)
    for i, (p, x) in enumerate(parsed):
        opened = p in ("B", "I")  # an entity of type x continues after this word
        for j, (q, y) in enumerate(parsed):
            if not iobes:
                pairs[i, j] = q != "I" or (opened and x == y)
            elif opened:
                pairs[i, j] = q in ("I", "E") and x == y
            else:
                pairs[i, j] = q in ("O", "B", "S")
    start = np.array([p in ("O", "B", "S") for p, _ in parsed])
    end = np.array([p in ("O", "E", "S") or not iobes for p, _ in parsed])
    for array in (pairs, start, end):
        array.flags.writeable = False
    return pairs, start, end


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(x - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


@dataclass(frozen=True, eq=False)
class Transitions:
    """A linear-chain CRF's learned scores over a tag list, and its decoding.

    Attributes:
        tags: the tags, in the order of the model's outputs (``id2label``).
        pairs: ``(tags, tags)``: the score of tag ``j`` following tag ``i``.
        start: ``(tags,)``: the score of a unit starting with each tag.
        end: ``(tags,)``: the score of a unit ending with each tag.
    """

    tags: tuple[str, ...]
    pairs: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.tags)
        for name, shape in (("pairs", (n, n)), ("start", (n,)), ("end", (n,))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"CRF {name} has shape {value.shape}; {n} tags need {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"CRF {name} holds a value that is not a finite number")
            object.__setattr__(self, name, value)
        # Forbidden transitions score -inf: no path takes them.
        ok_pairs, ok_start, ok_end = allowed_transitions(self.tags)
        scores = (
            np.where(ok_pairs, self.pairs, -np.inf),
            np.where(ok_start, self.start, -np.inf),
            np.where(ok_end, self.end, -np.inf),
        )
        object.__setattr__(self, "_scores", scores)
        # The same in probability space, each shifted by its largest allowed score (a shift
        # common to every path changes no marginal): what _marginals multiplies by.
        weights = tuple(np.exp(x - x[np.isfinite(x)].max()) for x in scores)
        object.__setattr__(self, "_weights", weights)

    @classmethod
    def constraints(cls, tags: Sequence[str]) -> Transitions:
        """No learned scores, only the scheme's rules: Viterbi over these finds the allowed tag
        sequence of highest emission score (``decode_rule=viterbi`` of the flat head)."""
        n = len(tags)
        return cls(tuple(tags), np.zeros((n, n)), np.zeros(n), np.zeros(n))

    def record(self) -> dict[str, Any]:
        """Plain JSON values (``bioner.json``'s ``crf``) that :meth:`from_record` reads back."""
        return {
            "tags": list(self.tags),
            "transitions": self.pairs.tolist(),
            "start": self.start.tolist(),
            "end": self.end.tolist(),
        }

    @classmethod
    def from_record(cls, node: Any, source: str, id2label: Mapping[int, str]) -> Transitions:
        """The transitions of a record (``bioner.json``'s ``crf``), checked against the model's
        labels. Only numbers and tag names are read.

        Raises:
            ConfigError: the record is not as :meth:`record` writes it, or its tags are not the
                model's, in the model's order.
        """
        fix = "it must hold 'tags', 'transitions', 'start' and 'end' as bioner-train writes them"
        if (
            not isinstance(node, Mapping)
            or set(node) != {"tags", "transitions", "start", "end"}
            or not isinstance(node["tags"], list)
        ):
            raise ConfigError(f"{source}: 'crf' is not a CRF record; {fix}")
        tags = tuple(str(t) for t in node["tags"])
        expected = tuple(str(id2label[i]) for i in range(len(id2label)))
        if tags != expected:
            raise ConfigError(
                f"{source}: the CRF's tags {list(tags)} are not the model's labels "
                f"{list(expected)}; the folder mixes files of different runs"
            )
        try:
            arrays = [np.array(node[k], dtype=np.float64) for k in ("transitions", "start", "end")]
            return cls(tags, *arrays)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{source}: 'crf' is not a CRF record ({err}); {fix}") from err

    def decode(self, emissions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best allowed tag sequence of one unit and each tag's marginal probability.

        Args:
            emissions: ``(words, tags)`` emission scores (the network's outputs at each word).

        Returns:
            Tag ids ``(words,)`` of the Viterbi path and, per word, the probability the CRF
            gives that word's tag over all allowed sequences.
        """
        pairs, start, end = self._scores
        n, k = emissions.shape
        if n == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        best = start + emissions[0]
        back = np.zeros((n, k), dtype=np.int64)
        columns = np.arange(k)
        for t in range(1, n):
            step = best[:, None] + pairs
            back[t] = step.argmax(axis=0)
            best = step[back[t], columns] + emissions[t]
        path = np.empty(n, dtype=np.int64)
        path[-1] = int(np.argmax(best + end))
        for t in range(n - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        marginals = self._marginals(emissions)
        return path, np.minimum(marginals[np.arange(n), path], 1.0)

    def _marginals(self, emissions: np.ndarray) -> np.ndarray:
        """Each word's tag probabilities over the allowed sequences: forward-backward in
        probability space, each step rescaled to sum 1 (a few array operations per word);
        in log space where that underflows."""
        pairs, start, end = self._weights
        weights = np.exp(emissions - emissions.max(axis=1, keepdims=True))
        n = len(emissions)
        alpha = np.empty_like(weights)
        beta = np.empty_like(weights)
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: see below
            alpha[0] = start * weights[0]
            alpha[0] /= alpha[0].sum()
            for t in range(1, n):
                a = (alpha[t - 1] @ pairs) * weights[t]
                alpha[t] = a / a.sum()
            beta[-1] = end
            for t in range(n - 2, -1, -1):
                b = pairs @ (weights[t + 1] * beta[t + 1])
                beta[t] = b / b.sum()
            marginals = alpha * beta
            marginals /= marginals.sum(axis=1, keepdims=True)
        if np.isfinite(marginals).all():
            return marginals
        return self._log_marginals(emissions)

    def _log_marginals(self, emissions: np.ndarray) -> np.ndarray:
        """:meth:`_marginals` in log space (slower; for emissions far apart)."""
        pairs, start, end = self._scores
        alpha = np.empty_like(emissions)
        beta = np.empty_like(emissions)
        alpha[0] = start + emissions[0]
        for t in range(1, len(emissions)):
            alpha[t] = _logsumexp(alpha[t - 1][:, None] + pairs, axis=0) + emissions[t]
        beta[-1] = end
        for t in range(len(emissions) - 2, -1, -1):
            beta[t] = _logsumexp(pairs + (emissions[t + 1] + beta[t + 1])[None, :], axis=1)
        return np.exp(alpha + beta - _logsumexp(alpha[-1] + end, axis=0))


def check_crf_alignment(label_strategy: str, decode: str) -> None:
    """Refuse label strategies the ``crf`` head cannot chain: it scores one labelled sub-word
    per word, so ``label_strategy`` must be ``first`` or ``last``, decoded from that sub-word.

    Raises:
        ValueError: another combination (the message gives the settings to use).
    """
    if label_strategy not in ("first", "last") or decode != label_strategy:
        raise ValueError(
            f"alignment label_strategy={label_strategy!r} with decode={decode!r}: the crf head "
            "chains one labelled sub-word per word; use alignment=first or alignment=last"
        )


__all__ = ["Transitions", "allowed_transitions", "check_crf_alignment"]
