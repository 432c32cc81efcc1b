"""The i2b2/VA 2010 concept corpus (problem, test, treatment) from a user's licensed copy.

Layout, as the three release archives unpack (``partners/unannotated`` has no concepts and is
skipped)::

    <data_dir>/concept_assertion_relation_training_data/{beth,partners}/txt/NAME.txt
    <data_dir>/concept_assertion_relation_training_data/{beth,partners}/concept/NAME.con
    <data_dir>/test_data/NAME.txt
    <data_dir>/reference_standard_for_test_data/concepts/NAME.con

A ``.txt`` note is pre-tokenised, one sentence per line. A ``.con`` line is
``c="<lower-cased text>" L1:T1 L2:T2||t="<type>"``: 1-based line numbers counting every physical
line, 0-based token indices (tokens are the space-separated items of a line), end token inclusive;
a concept may run from one line into the next, and the text may contain ``"``. Lines come
unsorted and may repeat (repeats are read once).

Documents: the text is the ``.txt`` content as is; words are the tokens with their exact offsets;
sentences are the non-empty lines, merged where a concept runs across lines. The release has no
devel split, so a seeded ``dev_fraction`` of the training notes is held out as devel.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import Document, Range, Span, overlaps
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import CorpusReader, check_options, read_text, split_lines

log = logging.getLogger(__name__)

TRAIN_DIR = "concept_assertion_relation_training_data"
TEST_TXT_DIR = "test_data"
TEST_CON_DIR = "reference_standard_for_test_data/concepts"
ENTITY_TYPES = ("problem", "test", "treatment")

# Greedy text group: concept text may itself contain '"' (c=""leaky valve"" 31:13 31:14).
_CONCEPT = re.compile(r'c="(.*)" (\d+):(\d+) (\d+):(\d+)\|\|t="([^"]*)"')
_TOKEN = re.compile(r"\S+")
_CON_FORMAT = 'each line is c="text" LINE:TOKEN LINE:TOKEN||t="type"'
_OFFSETS = "lines are 1-based, tokens 0-based, end token inclusive"


class I2B2Reader(CorpusReader):
    """Reader for the i2b2/VA 2010 concept annotations (``.txt`` + ``.con``).

    Args:
        name: dataset name.
        data_dir: the folder the release archives were unpacked into.
        entity_types: concept types, or ``None`` to infer them from the training split.
        dev_fraction: share of training notes held out as the devel split (by note).
        seed: seed of the held-out draw (same seed, same notes, whatever the file order).
        on_mismatch: ``error`` when a concept's text differs from the tokens its offsets cover,
            or ``skip`` such concepts, counting them in :attr:`repairs` with a warning (the
            release has a few off-by-one offsets).
        download: always empty in practice: the corpus is licensed.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        entity_types: Sequence[str] | None = ENTITY_TYPES,
        dev_fraction: float = 0.1,
        seed: int = 0,
        on_mismatch: str = "error",
        download: Sequence[Mapping[str, Any]] | None = None,
        filter: Mapping[str, Any] | None = None,  # the config key dataset.filter
        split: Mapping[str, Any] | None = None,
        train_subset: Mapping[str, Any] | None = None,
        relabel: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name, data_dir, entity_types, download, filter, split, train_subset, relabel
        )
        if not 0.0 <= dev_fraction < 1.0:
            raise ValueError(f"dev_fraction must be in [0, 1), not {dev_fraction}")
        check_options({"on_mismatch": (on_mismatch, ("error", "skip"))})
        self.dev_fraction = dev_fraction
        self.seed = seed
        self.on_mismatch = on_mismatch

    def required_files(self) -> list[Path]:
        return [self.data_dir / d for d in (TRAIN_DIR, TEST_TXT_DIR, TEST_CON_DIR)]

    def split_files(self, split: str) -> list[Path]:
        # devel is a share of the training notes.
        dirs = (TEST_TXT_DIR, TEST_CON_DIR) if split == "test" else (TRAIN_DIR,)
        return [self.data_dir / d for d in dirs]

    def missing_hint(self) -> str:
        return (
            "i2b2 2010 is licensed: request it from the n2c2 portal "
            "(https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/) and unpack "
            "concept_assertion_relation_training_data.tar.gz, test_data.tar.gz and "
            f"reference_standard_for_test_data.tar.gz into {self.data_dir}"
        )

    def notes(self, split: str) -> list[tuple[Path, Path]]:
        """``(txt, con)`` file pairs of ``split``, sorted by note name."""
        if split == "test":
            txt_dir = self.data_dir / TEST_TXT_DIR
            pairs = [
                (t, self.data_dir / TEST_CON_DIR / f"{t.stem}.con") for t in txt_dir.glob("*.txt")
            ]
        else:
            train_dir = self.data_dir / TRAIN_DIR
            pairs = [
                (t, t.parent.parent / "concept" / f"{t.stem}.con")
                for t in train_dir.rglob("*.txt")
                if t.parent.name == "txt" and "unannotated" not in t.relative_to(train_dir).parts
            ]
            txt_dir = train_dir
        if not pairs:
            raise CorpusFormatError(
                txt_dir,
                None,
                "no notes (*.txt) found",
                f"unpack the three release archives into {self.data_dir}, giving e.g. "
                f"{TRAIN_DIR}/beth/txt/NAME.txt and {TEST_TXT_DIR}/NAME.txt",
            )
        names: dict[str, Path] = {}
        for txt, con in pairs:
            if txt.stem in names:
                raise CorpusFormatError(
                    txt, None, f"note name {txt.stem} also used by {names[txt.stem]}",
                    "keep one copy of each note",
                )  # fmt: skip
            names[txt.stem] = txt
            if not con.is_file():
                raise CorpusFormatError(
                    con,
                    None,
                    f"the concept file of {txt} is missing",
                    "restore it from the release",
                )
        pairs.sort(key=lambda p: p[0].stem)
        if split == "test":
            return pairs
        held_out = self._devel_names(sorted(names))
        return [p for p in pairs if (p[0].stem in held_out) == (split == "devel")]

    def _devel_names(self, names: list[str]) -> set[str]:
        """The training notes held out as devel: a seeded draw over the sorted names."""
        shuffled = list(names)
        random.Random(self.seed).shuffle(shuffled)
        n = len(names)
        # At least one devel note whenever a fraction is asked for, and at least one train note.
        n_dev = min(n - 1, max(1, int(self.dev_fraction * n + 0.5))) if self.dev_fraction else 0
        return set(shuffled[:n_dev])

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        docs = []
        skipped = 0
        for txt, con in self.notes(split):
            doc, n = self._note(txt, con, allowed)
            docs.append(doc)
            skipped += n
        self._count_repairs(
            split, skipped, "concepts whose text does not match their offsets skipped"
        )
        return docs

    def _note(self, txt: Path, con: Path, allowed: set[str] | None) -> tuple[Document, int]:
        """The document of one note, and the number of mismatching concepts skipped."""
        text = read_text(txt, self.filter.decode_errors)
        lines: list[list[Range]] = []  # token ranges per physical line
        pos = 0
        for line in text.split("\n"):
            lines.append([(pos + m.start(), pos + m.end()) for m in _TOKEN.finditer(line)])
            pos += len(line) + 1
        first_word = [0]
        for toks in lines:
            first_word.append(first_word[-1] + len(toks))
        words = [w for toks in lines for w in toks]

        concepts: dict[tuple[int, int, str], tuple[int, int, int]] = {}  # span -> .con line, L1, L2
        skipped = 0
        # An empty .con is a note without concepts, not a broken file.
        con_lines = split_lines(read_text(con, self.filter.decode_errors, allow_empty=True))
        for no, raw in enumerate(con_lines, 1):
            line = raw.strip()
            if not line:
                continue
            m = _CONCEPT.fullmatch(line)
            if not m:
                raise CorpusFormatError(con, no, "not a concept line", _CON_FORMAT)
            ctext, label = m.group(1), m.group(6)
            l1, t1, l2, t2 = (int(g) for g in m.group(2, 3, 4, 5))
            if allowed is not None and label not in allowed:
                raise self._label_error(con, no, label)
            for ln, tok in ((l1, t1), (l2, t2)):
                if not 1 <= ln <= len(lines):
                    raise CorpusFormatError(
                        con, no, f"line {ln} is outside {txt.name} ({len(lines)} lines)", _OFFSETS
                    )
                if tok >= len(lines[ln - 1]):
                    raise CorpusFormatError(
                        con,
                        no,
                        f"token {tok} is outside line {ln} of {txt.name} "
                        f"({len(lines[ln - 1])} tokens)",
                        _OFFSETS,
                    )
            i, j = first_word[l1 - 1] + t1, first_word[l2 - 1] + t2
            if j < i:
                raise CorpusFormatError(con, no, "the concept ends before it starts", _OFFSETS)
            found = " ".join(text[s:e] for s, e in words[i : j + 1])
            if found.lower() != ctext.lower():
                if self.on_mismatch == "error":
                    raise CorpusFormatError(
                        con,
                        no,
                        f"concept text {ctext!r} differs from the tokens {l1}:{t1}-{l2}:{t2} of "
                        f"{txt.name}: {found!r}",
                        "correct the offsets, or set dataset.on_mismatch=skip to skip such "
                        "concepts (they are counted and logged)",
                    )
                skipped += 1
                continue
            concepts.setdefault((words[i][0], words[j][1], label), (no, l1, l2))

        spans = sorted(Span(s, e, label) for s, e, label in concepts)
        # The i2b2 guidelines have no overlapping concepts, so one is worth a warning; it is kept
        # (documents hold every gold span) and bioner-data stats counts it.
        kinds = overlaps(spans)
        if any(kinds.values()):
            found = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.items() if n)
            log.warning("%s: concepts overlapping another, kept: %s", con, found)
        reach = [0] * (len(lines) + 1)  # per line (1-based): last line a concept there runs to
        for _, l1, l2 in concepts.values():
            reach[l1] = max(reach[l1], l2)
        sentences: list[Range] = []
        extend_to = 0
        for ln, toks in enumerate(lines, 1):
            if toks:
                if sentences and ln <= extend_to:  # inside a concept that spans lines
                    sentences[-1] = (sentences[-1][0], toks[-1][1])
                else:
                    sentences.append((toks[0][0], toks[-1][1]))
            extend_to = max(extend_to, reach[ln])
        meta = {"source": str(txt), "concepts": str(con)}
        return Document(txt.stem, text, spans, sentences, words, meta), skipped
