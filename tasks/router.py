"""A worker's mode-affinity router: it consumes the queue of one mode and moves as the policy says.

Every ``ROUTER_INTERVAL`` seconds (while its worker runs a job, every tenth of
``ROUTER_STARVATION`` and once when the job ends: TickSchedule) the router reads the
backend's summary (each mode's
backlog, published by the backend's elected allocator, tasks/allocator.py) and the live
number of servers per mode (tasks/serving.py), asks tasks/router_policy.py, and moves
the worker's Celery consumer when the policy says so. The policy allocates by demand
once the summary carries arrival rates and run times (tasks/arrivals.py). A tick costs
Redis the same at any fleet size: one read of O(modes) (the summary; Redis' clock only
once a minute, ServerClock). The worker's own entry (its mode, busy or idle) is renewed
by its heartbeat's write (``beat``: every 3 s and when a job starts or ends), or by the
tick every third of its lease where no heartbeat beats; the router that holds the
allocator lease also reads the whole fleet, once per tick. Moves are atomic against
other routers: a worker takes a mode only if no other worker took it since it looked, so
two idle workers do not chase the same backlog. It also follows the modes config as it
is reloaded: a removed mode's server chooses again. A mode whose files this host lacks
(modes/roots.py) is never chosen: its backlog stays in the summary for the workers that
have them, and a worker whose mode's files went missing leaves it. Which modes those are
is worked out on the host's own disk when the config version changes and again every
MISSING_RECHECK seconds (files copied in later are found), never per tick.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable

from config import Settings
from jobs.keys import CUSTOM_QUEUE, generation_queue, summary_key
from modes.registry import ModesRegistry
from modes.roots import ModelRoots
from tasks.allocator import LEASE_MS as ALLOCATOR_LEASE_MS
from tasks.allocator import Allocator, Summary, read_summary
from tasks.celery_app import app
from tasks.restore import Restorer
from tasks.router_policy import Backlog, RouterPolicy, WorkerView
from tasks.serving import ANY, ServingTable

# Seconds between looks at the disk for the modes' files (a config change looks at once).
MISSING_RECHECK = 10.0
log = logging.getLogger(__name__)
LEASE_MS = 10_000  # a dead worker stops counting as a server after this long (as its heartbeat)
CLOCK_EVERY = 60.0  # seconds between readings of Redis' clock (TIME) by a router
BUSY_SHARE = 0.1  # a busy worker's router ticks every this share of ROUTER_STARVATION (at least every interval)
POLL = 0.05  # seconds between the loop's looks at whether the worker's job ended (no Redis)


class ServerClock:
    """Redis' clock without asking Redis at every tick: read once every ``every`` seconds and counted
    forward on this host's monotonic clock in between.  The two drift apart by milliseconds a
    minute at most, far below the seconds a router judges by it (a summary's age, a job's wait);
    a clock stepped on the Redis host is followed within ``every`` seconds.  A takeover never
    rests on it alone: the allocator lease (SET NX) decides who allocates."""

    def __init__(self, every: float = CLOCK_EVERY) -> None:
        self._every = every
        self._read_at: tuple[float, float] | None = None  # (Redis' seconds, time.monotonic()) at the last reading

    def due(self) -> bool:
        return self._read_at is None or time.monotonic() - self._read_at[1] >= self._every

    def set(self, reply: tuple[int, int]) -> None:
        """Take a TIME reply as Redis' clock now."""
        seconds, micros = reply
        self._read_at = (seconds + micros / 1e6, time.monotonic())

    def now(self) -> float:
        redis_seconds, monotonic = self._read_at
        return redis_seconds + time.monotonic() - monotonic


class TickSchedule:
    """When a router ticks: every ``interval`` while its worker is idle or the router allocates, every
    ``busy_every`` while its worker runs a job, and at once when the job ends.

    A worker running a job moves only after the job (Celery's consumer changes, the job does not), so
    the ticks of a busy worker decide nothing sooner than the tick at the job's end would, except a
    starving mode pulling it off a busy queue (it goes on to its next job without an idle moment):
    those are bounded by ``busy_every``, a tenth of the starvation bound.  The allocator keeps ticking:
    its lease and the fleet's summary live on its ticks.  Pure (the clock is given), so the control-plane
    bench counts a busy fleet's ticks with the same code."""

    def __init__(self, interval: float, busy_every: float) -> None:
        self._interval = interval
        self._busy_every = max(interval, busy_every)
        self._last = -math.inf
        self._was_busy = False

    def due(self, now: float, busy: bool, allocating: bool = False) -> bool:
        """Whether to tick now; call it at every look (it notices the job's end), then ``ticked`` after a tick."""
        ended, self._was_busy = self._was_busy and not busy, busy
        every = self._busy_every if busy and not allocating else self._interval
        return ended or now - self._last >= every

    def ticked(self, now: float) -> None:
        self._last = now


class Router:
    def __init__(
        self,
        redis_client,
        registry: ModesRegistry,
        serves: str,
        name: str,
        settings: Settings,
        cached: Callable[[], set[str]] = set,
        lease_ms: int = LEASE_MS,
        busy: Callable[[], bool] = lambda: False,
        allocator_ms: int = ALLOCATOR_LEASE_MS,
        roots: ModelRoots | None = None,
        restorer: Restorer | None = None,
    ) -> None:
        """``cached`` tells which modes the worker holds in host RAM, ``busy`` whether it runs a
        job now; ``lease_ms`` is how long it counts as its mode's server after its last tick,
        ``allocator_ms`` how long the allocator lease outlives its holder's last tick; ``roots``
        where this host keeps the modes' files (None: every mode counts as present); ``restorer``
        the fleet's scan for dead workers' messages, run while this router allocates."""
        self._redis = redis_client
        self._registry = registry
        self._roots = roots
        self.serves = serves
        self._name = name
        self._cached = cached
        self._busy = busy
        self._lease_ms = lease_ms
        self._interval = settings.router_interval
        self._schedule = TickSchedule(self._interval, BUSY_SHARE * settings.router_starvation)
        self._pin_seconds = settings.router_pin
        self._policy = RouterPolicy(
            min_dwell=settings.router_min_dwell,
            starvation=settings.router_starvation,
            switch_cost=settings.router_switch_cost,
            demand=True,  # by the arrivals the allocator counts and the run times it measures
        )
        self._table = ServingTable(redis_client, serves)
        allocator_ms = max(allocator_ms, int(4000 * self._interval))  # the holder renews it every tick
        self._restorer = restorer
        restore = restorer if restorer is not None else (lambda: None)
        self._allocator = Allocator(redis_client, serves, name, self._table, allocator_ms, restore)
        self._clock = ServerClock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._since = time.monotonic()
        self._pinned_until = 0.0
        self._consuming = False
        self._unserved_since: dict[str, float] = {}
        self._modes: list[str] | None = None
        self._modes_version = 0
        self._written_at = 0.0  # time.monotonic() when this worker's entry was last written
        self._missing_version = -1
        self._missing_checked = 0.0  # time.monotonic() of the last look at the disk
        self.missing: dict[str, str] = {}  # mode -> why this host cannot run it
        self.serving: str | None = None

    @property
    def queues(self) -> list[str]:
        """The queues this worker consumes: its mode's, and the custom-job queue."""
        mode = [generation_queue(self.serves, self.serving)] if self.serving else []
        return [*mode, CUSTOM_QUEUE]

    def modes(self) -> list[str]:
        """The modes of the current config that this worker's backend can run."""
        config = self._registry.current()
        self._modes_version = self._registry.version
        mine = [m for m in config.modes.values() if m.backend == self.serves]
        if self._roots is not None and self._missing_due():
            missing = self._roots.lacking(mine)
            for mode, why in missing.items():
                if mode not in self.missing:
                    log.warning("router: %s will not serve mode %s: %s", self._name, mode, why)
            for mode in self.missing.keys() - missing.keys():
                log.info("router: %s has mode %s's files now", self._name, mode)
            self.missing, self._missing_version = missing, self._modes_version
            self._missing_checked = time.monotonic()
        return [m.name for m in mine]

    def _missing_due(self) -> bool:
        stale = time.monotonic() - self._missing_checked >= MISSING_RECHECK
        return self._missing_version != self._modes_version or stale

    def state(self) -> dict[str, str]:
        """For the heartbeat: the modes config version it routes by, and the modes this host lacks."""
        return {"modes_version": str(self._modes_version), "missing": json.dumps(self.missing)}

    def start(self) -> None:
        """Begin following the policy; the worker consumes ``queues`` from now on."""
        self._consuming = True
        threading.Thread(target=self._loop, name="router", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._table.leave(self._name)
            self._allocator.release()
            if self._restorer is not None:
                self._restorer.close()

    def tick(self) -> str | None:
        """Decide once; return the mode moved to, if any."""
        with self._lock:
            modes, backlogs, servers, idle, quiet = self._view()
            target = self._choose(modes, backlogs, servers, idle, quiet)
            if target is not None and not self._table.serve(
                self._name, target, self._lease_ms, self._state(), servers.get(target, 0)
            ):
                # Another router took it since the summary was made: decide again on the live counts.
                servers, idle = self._table.counts()
                target = self._choose(modes, backlogs, servers, idle, quiet)
                if target is not None and not self._table.serve(
                    self._name, target, self._lease_ms, self._state(), servers.get(target, 0)
                ):
                    target = None
            if target is None and self.serving in self.missing:
                self._leave()
                return None
            if target is None:
                self._renew()
                return None
            self._written_at = time.monotonic()
            why = ", ".join(f"{m}: {b.waiting} waiting, oldest {b.oldest_wait:.1f}s" for m, b in backlogs.items())
            log.info("router: %s moves from %s to %s (%s)", self._name, self.serving, target, why)
            self._consume(target)
            return target

    def pin(self, mode: str) -> None:
        """A switch job loaded ``mode`` here: serve it for ROUTER_PIN seconds whatever the backlog."""
        with self._lock:
            self._pinned_until = time.monotonic() + self._pin_seconds
            if mode != self.serving:
                self._table.serve(self._name, mode, self._lease_ms, self._state(), ANY)
                self._written_at = time.monotonic()
                log.info("router: %s pinned to %s by a switch job", self._name, mode)
                self._consume(mode)

    def _choose(
        self,
        modes: list[str],
        backlogs: dict[str, Backlog],
        servers: dict[str, int],
        idle: dict[str, int],
        quiet: float,
    ) -> str | None:
        """The mode to move to, or None to stay (``quiet``: seconds since the backend last admitted a job)."""
        now = time.monotonic()
        modes = [m for m in modes if m not in self.missing]
        backlogs = {m: b for m, b in backlogs.items() if m not in self.missing}
        me = WorkerView(
            serving=self.serving if self.serving in modes else None,
            dwell=now - self._since,
            pinned=now < self._pinned_until,
            cached=frozenset(self._cached()),
        )
        target = self._policy.choose(me, backlogs, servers, idle, quiet)
        return None if target == self.serving else target

    def _state(self) -> str:
        return "busy" if self._busy() else "idle"

    def _renew(self) -> None:
        """Write the entry when a third of its lease passed since it was last written: with the worker's
        heartbeat writing it (``beat``: every 3 s, and at once when a job starts or ends), never."""
        if not self.serving or time.monotonic() - self._written_at < self._lease_ms / 3000:
            return
        self._table.serve(self._name, self.serving, self._lease_ms, self._state())
        self._written_at = time.monotonic()

    def beat(self, key: str, fields: dict, ttl: int) -> None:
        """Write the worker's heartbeat (``fields`` into ``key``, kept ``ttl`` seconds) and renew this
        router's entry, busy or idle as the worker is now, in one script; after ``stop``, the heartbeat alone."""
        with self._lock:
            mode = "" if self._stop.is_set() or not self.serving else self.serving
            self._table.beat(self._name, mode, self._lease_ms, self._state(), key, fields, ttl)
            if mode:
                self._written_at = time.monotonic()

    def _leave(self) -> None:
        """Stop serving a mode whose files this host lacks (its config changed under it)."""
        log.info("router: %s leaves %s (%s)", self._name, self.serving, self.missing[self.serving])
        self._table.leave(self._name)
        if self._consuming:
            app.control.cancel_consumer(generation_queue(self.serves, self.serving), destination=[self._name])
        self.serving, self._since = None, time.monotonic()

    def _consume(self, mode: str) -> None:
        old, self.serving, self._since = self.serving, mode, time.monotonic()
        if not self._consuming:
            return
        app.control.add_consumer(generation_queue(self.serves, mode), destination=[self._name])
        if old:
            app.control.cancel_consumer(generation_queue(self.serves, old), destination=[self._name])

    def _read(self) -> tuple[Summary | None, float]:
        """The backend's summary and Redis' clock (seconds), in one round trip: a GET, with a TIME only
        when the clock is due (ServerClock)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(summary_key(self.serves))
        if self._clock.due():
            pipe.time()
        raw, *clock = pipe.execute()
        if clock:
            self._clock.set(clock[0])
        return read_summary(raw), self._clock.now()

    def _view(
        self, modes: list[str] | None = None
    ) -> tuple[list[str], dict[str, Backlog], dict[str, int], dict[str, int], float]:
        """What a tick sees: this backend's modes, each one's backlog, its servers, how many of them are
        idle, and the seconds since the backend last admitted a job; the summary is made here when this
        router holds the allocator lease or finds it stale.

        The modes are re-read from the registry only when the summary was made from another
        config version (or this router allocates): a steady tick reads nothing but the summary.
        """
        summary, now = self._read()
        due = self._allocator.due(summary, now)
        if modes is None:
            if due or self._modes is None or summary is None or summary.version != self._modes_version:
                self._modes = self.modes()
            modes = self._modes
        if due:
            summary = self._allocator.allocate(modes, self._modes_version) or summary
        servers, idle = (summary.servers, summary.idle) if summary else ({}, {})
        quiet = summary.quiet(now) if summary else 0.0
        return modes, self._backlogs(modes, summary, now), servers, idle, quiet

    def _backlogs(self, modes: list[str], summary: Summary | None, now: float) -> dict[str, Backlog]:
        """Each mode's backlog from the summary, with how long this router has seen it waiting unserved.

        A job counts as waiting from its submit until a worker claims it (the waiting set)
        and while its message is in the queue: a dead worker's job goes back to the queue,
        not to the waiting set.
        """
        servers = summary.servers if summary else {}
        backlogs = {}
        for mode in modes:
            waiting = summary.modes[mode].waiting if summary and mode in summary.modes else 0
            unserved = self._unserved_for(mode, waiting > 0 and not servers.get(mode))
            backlogs[mode] = summary.backlog(mode, now, unserved) if summary else Backlog(0, unserved_for=unserved)
        return backlogs

    def _snapshot(self, modes: list[str]) -> tuple[dict[str, Backlog], dict[str, int], dict[str, int]]:
        """What a tick sees of ``modes``: each one's backlog, its servers and how many of them are idle."""
        return self._view(modes)[1:4]

    def _unserved_for(self, mode: str, unserved: bool) -> float:
        if not unserved:
            self._unserved_since.pop(mode, None)
            return 0.0
        return time.monotonic() - self._unserved_since.setdefault(mode, time.monotonic())

    def _loop(self) -> None:
        while not self._stop.wait(min(self._interval, POLL)):
            now = time.monotonic()
            if not self._schedule.due(now, self._busy(), self._allocator.holding):
                continue
            self._schedule.ticked(now)
            try:
                self.tick()
            except Exception as exc:
                log.warning("router of %s: %s", self._name, exc)
