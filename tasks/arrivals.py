"""Arrival rates per mode, from the counters the API adds to as it admits each job.

The admit script (jobs/records.py) adds 1 to its mode's counter (jobs/keys.py
``arrivals_key``) in the same step that queues the job, so a counter never misses a job
and costs no extra round trip.  The allocator (tasks/allocator.py) reads every mode's
counter once per tick (one MGET) and keeps readings of the last ``window`` seconds in its own
memory (one every ``window / KEPT`` seconds): a mode's arrivals are the difference
between the newest reading and the oldest one kept, over the seconds between them.  A new allocator (a start, a
fail-over) has counted for no time at all: its rates are then unknown, not zero, and the
policy (tasks/router_policy.py) moves nobody on them until the span grows.  The
readings also tell when the backend last admitted a job (to a tick: the first reading
whose counts rose), which the policy uses to see a batch end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import redis

from jobs.keys import arrivals_key
from jobs.metrics import METRICS_KEY, SEP

WINDOW = 600.0  # seconds of arrivals a rate is counted over
KEPT = 120  # readings kept over a window


def read(pipe: redis.client.Pipeline, backend: str, modes: list[str]) -> None:
    """Queue the two reads (none without ``modes``) that ``Arrivals.add`` and ``job_times`` take: every
    mode's counter, and its jobs' run times so far (the metrics' ``run`` histogram, jobs/metrics.py)."""
    if modes:
        pipe.mget([arrivals_key(backend, mode) for mode in modes])
        pipe.hmget(METRICS_KEY, [SEP.join(("h", "run", mode, end)) for mode in modes for end in ("sum", "count")])


def job_times(modes: list[str], runs: list[bytes | None]) -> dict[str, float]:
    """Each mode's mean run time in seconds, from ``read``'s second reply; 0 for a mode with no job run yet."""
    pairs = zip(runs[::2], runs[1::2], strict=True)
    return {mode: float(total) / int(n) if n and int(n) else 0.0 for mode, (total, n) in zip(modes, pairs, strict=True)}


@dataclass
class Arrivals:
    """The readings of the last ``window`` seconds: (Redis time, mode -> count); and ``last_arrival``, the
    Redis time of the first reading that saw a count rise (before any: of the first reading, since when
    nothing arrived as far as these readings know)."""

    window: float = WINDOW
    readings: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)
    last_arrival: float | None = None
    _latest: dict[str, int] = field(default_factory=dict)

    def add(self, now: float, modes: list[str], counts: list[bytes | None]) -> dict[str, tuple[int, float]]:
        """Record the counts read at ``now``; per mode, the jobs admitted since the oldest reading kept and
        over how many seconds (0 arrivals over 0 seconds: not yet known)."""
        reading = {mode: int(count or 0) for mode, count in zip(modes, counts, strict=True)}
        if self.last_arrival is None or any(count > self._latest.get(mode, count) for mode, count in reading.items()):
            self.last_arrival = now
        self._latest = reading
        if self.readings and any(count < self.readings[-1][1].get(mode, 0) for mode, count in reading.items()):
            self.readings.clear()  # the counters went back (Redis lost them): count afresh
        if not self.readings or now - self.readings[-1][0] >= self.window / KEPT:
            self.readings.append((now, reading))
        while len(self.readings) > 1 and self.readings[1][0] <= now - self.window:
            self.readings.popleft()
        since, first = self.readings[0]
        return {
            mode: (max(0, count - first[mode]), now - since) if mode in first else (0, 0.0)
            for mode, count in reading.items()
        }
