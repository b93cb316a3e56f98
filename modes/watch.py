"""Reload triggers: a change to the modes file (watchdog) and SIGHUP."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)
DEBOUNCE_SECONDS = 0.3  # editors write a file in several steps
# Writes, creations and moves only: watchdog also reports a file being opened and closed
# unwritten, which the reload's own read of the file causes, so reacting to those reloads forever.
CHANGES = frozenset({EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED, EVENT_TYPE_CREATED, EVENT_TYPE_MOVED})


class _FileChanged(FileSystemEventHandler):
    def __init__(self, path: Path, callback: Callable[[], object]) -> None:
        self._path = path
        self._callback = callback
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES:
            return
        # The folder may hold busy files (logs): compare names before resolving any path.
        paths = [str(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        if not any(Path(p).name == self._path.name and Path(p).resolve() == self._path for p in paths):
            return
        with self._lock:
            if self._timer:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_SECONDS, self._callback)
            self._timer.daemon = True
            self._timer.start()


def watch_file(path: Path, callback: Callable[[], object]) -> Observer:
    """Call ``callback`` after ``path`` is written, replaced or created; watches its folder."""
    path = Path(path).resolve()
    observer = Observer()
    observer.daemon = True
    observer.schedule(_FileChanged(path, callback), str(path.parent), recursive=False)
    observer.start()
    return observer


def reload_on_sighup(callback: Callable[[], object]) -> bool:
    """Run ``callback`` in a thread on SIGHUP; False when not on the main thread (no signals there)."""
    if threading.current_thread() is not threading.main_thread():
        return False

    def handler(signum, frame) -> None:
        log.info("SIGHUP: reloading the modes config")
        threading.Thread(target=callback, name="modes-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, handler)
    return True
