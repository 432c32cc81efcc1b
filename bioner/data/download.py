"""Fetching public corpus files, checked by sha256.

Dataset configs list their public files as ``download: [{url, path, sha256}]`` (``path``
relative to the corpus folder). :func:`fetch` is only ever called on request
(``reader.ensure_available(download=True)``, ``bioner-data download <name>``), never when a reader
is built or a split is loaded.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from bioner.errors import UserError

log = logging.getLogger(__name__)

#: Seconds to wait for a server; short, so that an offline machine fails at once.
TIMEOUT_S = 10.0
_CHUNK = 1 << 20


class DownloadError(UserError, OSError):
    """A file could not be downloaded (no network, server error); the message says what to do."""


class ChecksumError(UserError, ValueError):
    """A downloaded or existing file does not have the sha256 its config records."""


#: Variables that say "this machine has no network"; any non-empty value but 0/false sets them.
OFFLINE_ENV = ("BIONER_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_reason() -> str | None:
    """``"NAME=value"`` of the first set variable of :data:`OFFLINE_ENV`, or ``None`` (online).

    Hugging Face's variables count too: whoever keeps its hub offline wants no download here
    either, and without the check each missing corpus would wait for a network timeout.
    """
    for name in OFFLINE_ENV:
        value = os.environ.get(name, "").strip()
        if value and value.lower() not in ("0", "false", "no"):
            return f"{name}={value}"
    return None


def is_local_url(url: str) -> bool:
    """Whether ``url`` is a local file (``file://``), which an offline machine can still read."""
    return url.startswith("file:")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch(
    entries: Sequence[Mapping[str, Any]], dest_dir: str | Path, timeout: float = TIMEOUT_S
) -> list[Path]:
    """Download every missing file of ``entries`` into ``dest_dir``.

    Each file goes to a temporary name next to its destination, is checked against its sha256 and
    only then moved into place, so an interrupted or corrupted download never looks like a corpus
    file. A file already present with the right sha256 is not fetched again. An entry whose
    ``sha256`` is ``None`` (no published hash) is saved with a warning that gives its hash.

    Args:
        entries: mappings with ``url``, ``path`` (relative to ``dest_dir``) and ``sha256``.
        dest_dir: the corpus folder.
        timeout: seconds to wait for a server before giving up.

    Returns:
        The destination path of every entry.

    Raises:
        DownloadError: a server cannot be reached; nothing further is attempted.
        ChecksumError: a file's sha256 differs from the recorded one (both hashes are given).
    """
    dest_dir = Path(dest_dir).expanduser()
    paths = []
    for entry in entries:
        url, expected = str(entry["url"]), entry.get("sha256")
        dest = _destination(dest_dir, str(entry["path"]))
        paths.append(dest)
        if dest.exists():
            actual = sha256_file(dest)
            if expected is None or actual == expected:
                log.info("%s is present; not downloading it again", dest)
                continue
            raise ChecksumError(
                f"{dest} exists but its sha256 is {actual}, not the expected {expected}; delete "
                f"it to download it again from {url}"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        log.info("downloading %s to %s", url, dest)
        try:
            actual = _download(url, tmp, timeout)
        except (URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
            tmp.unlink(missing_ok=True)
            reason = getattr(err, "reason", None) or err
            raise DownloadError(
                f"could not download {url} ({reason}). If this machine is offline, copy the "
                f"corpus files from a machine that is online into {dest_dir} (or set "
                "BIONER_DATA_DIR / paths.data_dir=... to a folder holding a local copy)"
            ) from err
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if expected is not None and actual != expected:
            tmp.unlink()
            raise ChecksumError(
                f"{url} has sha256 {actual}, not the expected {expected}; it was not saved. The "
                "upstream file changed or the transfer was corrupted: try again, or update the "
                "sha256 in the dataset config after checking the file"
            )
        if expected is None:
            log.warning(
                "%s has no recorded sha256 and was not verified (its sha256: %s)", url, actual
            )
        os.replace(tmp, dest)
    return paths


def _destination(dest_dir: Path, rel: str) -> Path:
    """``dest_dir / rel``, refusing paths that would leave ``dest_dir``."""
    dest = dest_dir / rel
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ValueError(f"download path {rel!r} must be relative to the corpus folder {dest_dir}")
    return dest


def _download(url: str, tmp: Path, timeout: float) -> str:
    """Stream ``url`` into ``tmp``; return the sha256 of what was written."""
    h = hashlib.sha256()
    with urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
        while chunk := response.read(_CHUNK):
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()
