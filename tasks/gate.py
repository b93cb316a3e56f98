"""A pause point for tests that must order two workers' steps: ``TURN_GATE_DIR``.

When the variable names a folder, a delivery of job X that has read its turn
(tasks/turns.py) writes ``X.looked`` there and waits until ``X.open`` exists before
it claims anything.  A test can so hold one worker between its read and its claim
while another worker takes the same mode's jobs: the race of two workers on one
mode's turns, made repeatable.  Unset (always, outside tests), nothing waits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

POLL = 0.05


def turn_gate() -> Callable[[str], None] | None:
    """The gate named by TURN_GATE_DIR, or None."""
    folder = os.environ.get("TURN_GATE_DIR")
    if not folder:
        return None

    def wait(job_id: str) -> None:
        (Path(folder) / f"{job_id}.looked").touch()
        while not (Path(folder) / f"{job_id}.open").exists():
            time.sleep(POLL)

    return wait
