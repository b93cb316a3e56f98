"""Object store on the local filesystem (the default, and for one-machine fleets)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path, PurePosixPath

from storage.base import ObjectNotFound, nonempty, refuse_empty


class LocalStore:
    """Objects are files under ``root``; writes are atomic (temp file + rename).  Results and
    uploads hold prompts' images: folders are 0700 and files 0600, for the service's user alone.

    A written object survives its processes crashing at once, and a power loss or kernel crash
    once the kernel has flushed it (seconds: as Redis' ``appendfsync everysec`` keeps a job's
    record).  With ``fsync`` a write returns only once the file and its folder entries are on
    disk, so a job recorded succeeded after it keeps its image through a power loss too (with
    Redis on ``appendfsync always``); it costs about half a millisecond a write
    (docs/benchmarks.md).  An object is never empty: an empty file is what a power loss leaves
    of an unflushed write, so it reads as missing.
    """

    def __init__(self, root: str | Path, fsync: bool = False) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or ".." in parts:
            raise ValueError(f"object key {key!r} must be a relative path without '.' or '..'")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        refuse_empty(key, data)
        path = self._path(key)
        created = _make_folders(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.fsync:
            for folder in [path.parent, *(new.parent for new in created)]:
                _fsync_folder(folder)

    def get(self, key: str) -> bytes:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        return nonempty(key, data)

    def exists(self, key: str) -> bool:
        try:
            info = self._path(key).stat()
        except FileNotFoundError:
            return False
        return stat.S_ISREG(info.st_mode) and info.st_size > 0

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and any missing parents (0700); the ones created, innermost first."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=0o700, exist_ok=True)
    return missing


def _fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename into it, a folder made in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
