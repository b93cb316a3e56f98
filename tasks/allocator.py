"""The backend's elected allocator: the one worker that reads the whole fleet, once per interval.

A router's tick must cost Redis the same at any fleet size, so no router reads every
mode's queues or every worker's entry.  One router per backend holds the allocator
lease (``allocator_key``, renewed at each of its ticks); at each tick it reads every
mode's backlog (the waiting sets the API fills, jobs/keys.py, and the queues),
prunes waiting entries whose job left the queue, drops the entries of workers whose
serving lease ran out (tasks/serving.py), counts each mode's arrivals and measures
its jobs' run time (tasks/arrivals.py), and publishes a per-mode ``Summary``; then it
runs the fleet's scan for dead workers' messages (tasks/restore.py).
Every router reads that summary (O(modes)) and the live server counts, and decides
with tasks/router_policy.py.

Fail-over: when the holder dies its lease expires within ``lease_ms`` and its summary
stops moving; the first router to see the summary older than that takes the lease
(SET NX) and publishes from then on, so allocation resumes within a few seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from jobs.keys import allocator_key, generation_queue, job_key, summary_key, waiting_key
from tasks import arrivals
from tasks.router_policy import Backlog
from tasks.serving import ServingTable

log = logging.getLogger(__name__)
LEASE_MS = 3_000  # a dead allocator is replaced within about this long

# Renew the lease if held, take it if free: 1 when ARGV[1] holds it afterwards.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class ModeBacklog:
    """A mode's waiting jobs as the allocator saw them: how many, and the oldest's submit time (Redis clock)."""

    waiting: int
    oldest: float | None = None
    arrived: int = 0  # jobs admitted over the last ``span`` seconds (tasks/arrivals.py)
    span: float = 0.0
    job_time: float = 0.0  # mean seconds a job of the mode runs; 0: none has run yet


@dataclass(frozen=True)
class Summary:
    """The allocator's view of one backend at Redis time ``at`` (seconds)."""

    at: float
    holder: str
    version: int = 0  # of the modes config it was made from
    modes: dict[str, ModeBacklog] = field(default_factory=dict)
    servers: dict[str, int] = field(default_factory=dict)
    idle: dict[str, int] = field(default_factory=dict)
    last_arrival: float | None = None  # Redis time the backend last admitted a job, as far as its holder saw

    def to_json(self) -> str:
        modes = {m: [b.waiting, b.oldest, b.arrived, b.span, b.job_time] for m, b in self.modes.items()}
        return json.dumps(
            {
                "at": self.at,
                "holder": self.holder,
                "version": self.version,
                "modes": modes,
                "servers": self.servers,
                "idle": self.idle,
                "last_arrival": self.last_arrival,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Summary:
        data = json.loads(raw)
        modes = {m: ModeBacklog(*row) for m, row in data["modes"].items()}
        return cls(
            data["at"], data["holder"], data["version"], modes, data["servers"], data["idle"], data.get("last_arrival")
        )

    def quiet(self, now: float) -> float:
        """Seconds at Redis time ``now`` since the backend last admitted a job (0: not known)."""
        return 0.0 if self.last_arrival is None else max(0.0, now - self.last_arrival)

    def backlog(self, mode: str, now: float, unserved_for: float = 0.0) -> Backlog:
        """``mode``'s backlog as the policy takes it, at Redis time ``now``; none when the summary lacks it."""
        seen = self.modes.get(mode)
        if seen is None:
            return Backlog(0, unserved_for=unserved_for)
        oldest_wait = max(0.0, now - seen.oldest) if seen.oldest is not None else 0.0
        return Backlog(seen.waiting, oldest_wait, unserved_for, seen.arrived, seen.span, seen.job_time)


class Allocator:
    def __init__(
        self,
        client: redis.Redis,
        backend: str,
        name: str,
        table: ServingTable,
        lease_ms: int = LEASE_MS,
        restore: Callable[[], object] = lambda: None,
    ) -> None:
        """``restore``: the scan for dead workers' messages (tasks/restore.py), run while this one allocates."""
        self._redis = client
        self._restore = restore
        self._backend = backend
        self._name = name
        self._table = table
        self._lease_ms = lease_ms
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)
        self._arrivals = arrivals.Arrivals()
        self.holding = False

    def due(self, summary: Summary | None, now: float) -> bool:
        """Whether this router should try to allocate: it holds the lease, or the summary is missing or stale."""
        return self.holding or summary is None or now - summary.at > self._lease_ms / 1000

    def allocate(self, modes: list[str], version: int) -> Summary | None:
        """Hold (or take) the lease and publish a fresh summary of ``modes`` (of modes config ``version``);
        None when another router holds it."""
        held = bool(self._hold(keys=[allocator_key(self._backend)], args=[self._name, self._lease_ms]))
        if held != self.holding:
            self._arrivals = arrivals.Arrivals()  # a holder counts from its own readings only
            log.info("allocator of %s: %s %s the lease", self._backend, self._name, "took" if held else "lost")
        self.holding = held
        if not held:
            return None
        summary = self.publish(modes, version)
        self._restore()
        return summary

    def release(self) -> None:
        if self.holding:
            self._release(keys=[allocator_key(self._backend)], args=[self._name])
            self.holding = False

    def publish(self, modes: list[str], version: int = 0) -> Summary:
        """Read every mode's backlog and the fleet once, and publish the summary."""
        pipe = self._redis.pipeline(transaction=False)
        for mode in modes:
            pipe.zrange(waiting_key(self._backend, mode), 0, 0, withscores=True)
            pipe.zcard(waiting_key(self._backend, mode))
            pipe.llen(generation_queue(self._backend, mode))
        arrivals.read(pipe, self._backend, modes)
        pipe.time()
        *per_mode, (seconds, micros) = pipe.execute()
        now = seconds + micros / 1e6
        rows = [per_mode[3 * i : 3 * i + 3] for i in range(len(modes))]
        counts, runs = per_mode[3 * len(modes) :] or ([], [])
        counted = self._arrivals.add(now, modes, counts)
        job_times = arrivals.job_times(modes, runs)
        stale = self._stale_oldest(modes, [oldest for oldest, _, _ in rows])
        backlogs = {}
        for mode, (oldest, count, queued) in zip(modes, rows, strict=True):
            if mode in stale:
                oldest, count = [], count - 1
            first = oldest[0][1] if oldest else None
            backlogs[mode] = ModeBacklog(max(count, queued), first, *counted[mode], job_times[mode])
        dropped = self._table.drop_expired(int(now * 1000))
        if dropped:
            log.info("allocator of %s: %s stopped serving (lease ran out)", self._backend, ", ".join(dropped))
        servers, idle = self._table.counts()
        summary = Summary(now, self._name, version, backlogs, servers, idle, self._arrivals.last_arrival)
        self._redis.set(summary_key(self._backend), summary.to_json(), px=10 * self._lease_ms)
        return summary

    def _stale_oldest(self, modes: list[str], oldest: list[list[tuple[bytes, float]]]) -> set[str]:
        """Modes whose oldest waiting entry is no longer queued (expired, or canceled meanwhile), now
        removed from their waiting sets; one pipelined read for them all."""
        firsts = [(mode, first[0][0]) for mode, first in zip(modes, oldest, strict=True) if first]
        if not firsts:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        for _, job_id in firsts:
            pipe.hget(job_key(job_id.decode()), "status")
        statuses = pipe.execute()
        stale = [first for first, status in zip(firsts, statuses, strict=True) if status != b"queued"]
        for mode, job_id in stale:
            self._redis.zrem(waiting_key(self._backend, mode), job_id)
        return {mode for mode, _ in stale}


def read_summary(raw: bytes | None) -> Summary | None:
    return Summary.from_json(raw) if raw else None
