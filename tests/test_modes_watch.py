"""The modes file watcher: a write reloads once, and the reload's own read of the file does not reload again."""

from __future__ import annotations

import threading
import time

from modes.watch import DEBOUNCE_SECONDS, watch_file
from tests.processes import wait_for

QUIET = 20 * DEBOUNCE_SECONDS  # long enough for a self-triggered reload to come round many times


def test_a_write_reloads_once_and_an_idle_process_does_not_reload(tmp_path):
    path = tmp_path / "modes.yaml"
    path.write_text("modes: {}\n")
    reads: list[str] = []
    lock = threading.Lock()

    def reload() -> None:
        with lock:
            reads.append(path.read_text())  # as ModesRegistry.reload reads the file

    observer = watch_file(path, reload)
    try:
        path.write_text("modes: {a: {}}\n")
        wait_for(lambda: len(reads) == 1, 10, "the write to reload the config")
        time.sleep(QUIET)
        assert reads == ["modes: {a: {}}\n"], f"{len(reads)} reloads after one write"

        (tmp_path / "other.yaml").write_text("x: 1\n")
        path.with_suffix(".new").write_text("modes: {b: {}}\n")
        path.with_suffix(".new").replace(path)  # how editors and config tools save: a move
        wait_for(lambda: len(reads) == 2, 10, "the move to reload the config")
        time.sleep(QUIET)
        assert reads[1:] == ["modes: {b: {}}\n"], f"{len(reads) - 1} reloads after one move"
    finally:
        observer.stop()
        observer.join(timeout=5)
