"""k-fold cross-validation folds, split by document and fixed by a seed of their own.

A fold is a set of *documents*, never of sentences: the sentences of one abstract or clinical note
share vocabulary, abbreviations and entity mentions, so splitting them between training and
scoring would leak answers. The unit is the corpus reader's :class:`~bioner.data.document.Document`
(grouped by ``Document.id``, so documents that share an id always share a fold):

* PubTator corpora (``bc5cdr_pubtator``, MedMentions): one PMID per document.
* i2b2 2010: one clinical note per document.
* IOB/CoNLL files: the blocks between ``-DOCSTART-`` lines when the file has them; otherwise every
  sentence is its own document, because the files (BC5CDR, NCBI-disease and BC2GM as converted by
  Crichton et al. 2017) carry no document boundaries (see :mod:`bioner.data.readers.iob`). For
  folds by abstract on BC5CDR use ``dataset=bc5cdr_pubtator``.

The assignment depends only on the set of document ids, the number of folds and
:data:`FOLD_SEED`, never on the run's seed: runs with ``seed=1,2,3`` see the same folds, so their
spread measures the training noise, not a different split. Fold sizes differ by at most one
document.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bioner.data.document import Document
from bioner.errors import ConfigError

# Fixed on purpose (not the run seed): see the module docstring.
FOLD_SEED = 5318
# The inner devel split of a fold's training documents: one document in INNER_DEVEL_SHARE (by id,
# with a seed of its own). It picks the checkpoint and drives early stopping, so the held-out fold
# is scored by a model that never saw it, not even to choose an epoch.
INNER_DEVEL_SHARE = 10
INNER_SEED = FOLD_SEED + 1


def check_fold(folds: int | None, fold: int | None) -> None:
    """Check a ``folds``/``fold`` pair; both ``None`` means "no cross-validation".

    Raises:
        ConfigError: one is set without the other, ``folds < 2`` or ``fold`` outside
            ``[0, folds)``; the message names the override that fixes it.
    """
    if folds is None and fold is None:
        return
    if folds is None or fold is None:
        raise ConfigError(
            f"cross-validation needs both cv.folds and cv.fold (got folds={folds}, fold={fold}): "
            "e.g. cv.folds=5 cv.fold=0, or `-m cv.folds=5 cv.fold='range(5)'` for all folds; "
            "set both to null for the corpus's own splits"
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"cv.folds must be an integer >= 2, not {folds!r}: e.g. cv.folds=5")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ConfigError(
            f"cv.fold must be an integer in [0, {folds}) for cv.folds={folds}, not {fold!r}: "
            f"folds are numbered 0..{folds - 1} (`cv.fold='range({folds})'` runs them all)"
        )


def assign_folds(doc_ids: Sequence[str], folds: int, seed: int = FOLD_SEED) -> list[int]:
    """The fold of each document, from its id.

    The distinct ids are sorted (so the input order does not matter), shuffled with ``seed`` and
    dealt round-robin into ``folds`` folds; repeated ids get the same fold.

    Args:
        doc_ids: the id of each document (repeats allowed).
        folds: number of folds, at least 2.
        seed: the shuffling seed; keep the default so that every run sees the same folds.

    Returns:
        ``result[i]`` is the fold of ``doc_ids[i]``.

    Raises:
        ConfigError: fewer distinct documents than folds (a fold would be empty).
    """
    check_fold(folds, 0)
    unique = sorted(set(doc_ids))
    if len(unique) < folds:
        raise ConfigError(
            f"{folds} folds need at least {folds} documents, but there are {len(unique)}: "
            "lower cv.folds or raise data.limit_documents"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[j]: rank % folds for rank, j in enumerate(order.tolist())}
    return [fold_of[i] for i in doc_ids]


def split_fold(
    docs: Sequence[Document], folds: int, fold: int, seed: int = FOLD_SEED
) -> tuple[list[Document], list[Document]]:
    """Training documents (every fold but ``fold``) and held-out documents (fold ``fold``).

    Both keep the order of ``docs``.

    Raises:
        ConfigError: see :func:`check_fold` and :func:`assign_folds`.
    """
    check_fold(folds, fold)
    assigned = assign_folds([d.id for d in docs], folds, seed)
    train = [d for d, f in zip(docs, assigned) if f != fold]
    held_out = [d for d, f in zip(docs, assigned) if f == fold]
    return train, held_out


def split_inner_devel(docs: Sequence[Document]) -> tuple[list[Document], list[Document]]:
    """Training documents and the inner devel documents (about one in
    :data:`INNER_DEVEL_SHARE`, at least one) of a fold's training documents, by id.

    Both keep the order of ``docs``.

    Raises:
        ConfigError: fewer than two distinct documents.
    """
    n_ids = len({d.id for d in docs})
    if n_ids < 2:
        raise ConfigError(
            f"a cross-validation fold needs at least 2 training documents (one for the inner devel "
            f"split that picks the checkpoint), but has {n_ids}: lower cv.folds or raise "
            "data.limit_documents"
        )
    return split_fold(docs, min(INNER_DEVEL_SHARE, n_ids), 0, seed=INNER_SEED)
