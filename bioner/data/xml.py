"""Reading large XML files from elsewhere safely, one record at a time (PubMed, BioC).

:func:`xml_records` yields the direct children of a file's root element, each complete, and
clears the root after each, so memory stays flat however large the file. A file may be plain or
gzip-compressed (told by its content, not its name).

Security: such files are data, never code. The stdlib parser (expat) never loads a DTD or
external entity (a ``<!DOCTYPE ... SYSTEM "BioC.dtd">`` line is not fetched), and expat 2.4.1+
bounds entity amplification ("billion laughs"); on top of that a file that declares entities of
its own is refused before parsing, the check defusedxml would make.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# Bytes fed to the parser at a time: the records of one chunk are alive at once, so this bounds
# memory.
_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


class XMLFault(Exception):
    """Where and why an XML file cannot be read on.

    Args:
        line: the 1-based line where it breaks (the end of the chunk being read, for a parse
            error without a position).
        problem: what is wrong.
        fix: what the user can do.
    """

    def __init__(self, line: int, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.fix = fix


def open_maybe_gzip(path: str | Path) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed when it is gzip (by its first bytes)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def xml_records(
    path: str | Path, root_tag: str, what: str, fix: str, root_fix: str | None = None
) -> Iterator[ET.Element]:
    """The direct children of the root element of ``path``, each complete when yielded and
    dropped once the next is read (keep what you need, not the element).

    Args:
        path: a ``.xml`` file, plain or gzip-compressed.
        root_tag: the root element the file must have.
        what: what the file should be (for messages: "BioC XML").
        fix: what to do about a cut or malformed file.
        root_fix: what to do about another root element (default: "give <what>").

    Raises:
        XMLFault: the file declares entities, has another root element, is cut or malformed.
    """
    parser = ET.XMLPullParser(events=("start", "end"))
    depth = 0
    root: ET.Element | None = None
    fed_lines = 0
    prolog = True  # bytes before the root element: checked for entity declarations
    head = b""
    try:
        with open_maybe_gzip(path) as stream:
            while True:
                try:
                    # read1: what was decompressed before a cut is returned, not lost with the
                    # error of the same call
                    data = stream.read1(_CHUNK)
                except (EOFError, gzip.BadGzipFile, zlib.error) as err:
                    raise XMLFault(
                        fed_lines + 1, f"the gzip stream is cut or damaged ({err})", fix
                    ) from err
                if prolog:
                    head += data
                    if b"<!ENTITY" in head:
                        raise XMLFault(
                            head[: head.index(b"<!ENTITY")].count(b"\n") + 1,
                            f"the file declares XML entities, which {what} files never do "
                            "(refused: entity expansion can exhaust memory)",
                            f"give {what} without entity declarations",
                        )
                    prolog = not data or re.search(rb"<[A-Za-z_]", head) is None
                    if len(head) > _CHUNK:
                        head = head[-64:]  # enough to see a declaration cut by chunks
                if not data:
                    parser.close()
                else:
                    parser.feed(data)
                for event, element in parser.read_events():
                    if event == "start":
                        depth += 1
                        if root is None:
                            root = element
                            if root.tag != root_tag:
                                raise XMLFault(
                                    _line_of(head, root.tag),
                                    f"the root element is <{root.tag}>, not <{root_tag}>",
                                    root_fix or f"give {what}",
                                )
                        continue
                    depth -= 1
                    if depth == 1:  # a direct child of the root is complete: yield, then drop
                        yield element
                        assert root is not None
                        root.clear()
                if not data:
                    break
                fed_lines += data.count(b"\n")
    except ET.ParseError as err:
        line = err.position[0] if getattr(err, "position", None) else fed_lines + 1
        raise XMLFault(line, f"malformed or truncated XML ({err})", fix) from err


def _line_of(head: bytes, tag: str) -> int:
    """The line of the first ``<tag`` in ``head`` (1 when not found)."""
    at = head.find(b"<" + tag.encode())
    return head[:at].count(b"\n") + 1 if at >= 0 else 1
