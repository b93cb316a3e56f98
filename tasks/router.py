"""A worker's mode-affinity router: it consumes the queue of one mode and moves as the policy says.

Every ``ROUTER_INTERVAL`` seconds the router reads the backlog of each mode its backend
can run (the waiting sets the API fills, jobs/keys.py) and which mode every live worker
serves (a Redis hash of leases that each router renews), asks tasks/router_policy.py,
and moves the worker's Celery consumer when the policy says so.  Moves are atomic
against other routers: a worker takes a mode only if no other worker took it since it
looked, so two idle workers do not chase the same backlog.  It also follows the modes
config as it is reloaded: a removed mode's server chooses again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from config import Settings
from jobs.keys import CUSTOM_QUEUE, generation_queue, job_key, serving_key, waiting_key
from modes.registry import ModesRegistry
from tasks.celery_app import app
from tasks.router_policy import Backlog, RouterPolicy, WorkerView

log = logging.getLogger(__name__)
LEASE_MS = 10_000  # a dead worker stops counting as a server after this long (as its heartbeat)
ANY = 1 << 30

_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local others = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local value = entries[i + 1]
  local first = string.find(value, '|', 1, true)
  local second = string.find(value, '|', first + 1, true)
  if tonumber(string.sub(value, first + 1, second - 1)) < now then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif entries[i] ~= ARGV[1] and string.sub(value, 1, first - 1) == ARGV[2] then
    others = others + 1
  end
end
if others > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. (now + tonumber(ARGV[4])) .. '|' .. ARGV[5])
return 1
"""


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
    ) -> None:
        """``cached`` tells which modes the worker holds in host RAM, ``busy`` whether it runs a
        job now; ``lease_ms`` is how long it counts as its mode's server after its last tick."""
        self._redis = redis_client
        self._registry = registry
        self.serves = serves
        self._name = name
        self._cached = cached
        self._busy = busy
        self._lease_ms = lease_ms
        self._interval = settings.router_interval
        self._pin_seconds = settings.router_pin
        self._policy = RouterPolicy(
            min_dwell=settings.router_min_dwell,
            starvation=settings.router_starvation,
            switch_cost=settings.router_switch_cost,
        )
        self._take = redis_client.register_script(_TAKE)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._since = time.monotonic()
        self._pinned_until = 0.0
        self._consuming = False
        self._unserved_since: dict[str, float] = {}
        self.serving: str | None = None

    @property
    def queues(self) -> list[str]:
        """The queues this worker consumes: its mode's, and the custom-job queue."""
        mode = [generation_queue(self.serves, self.serving)] if self.serving else []
        return [*mode, CUSTOM_QUEUE]

    def modes(self) -> list[str]:
        """The modes of the current config that this worker's backend can run."""
        return [m.name for m in self._registry.current().modes.values() if m.backend == self.serves]

    def start(self) -> None:
        """Begin following the policy; the worker consumes ``queues`` from now on."""
        self._consuming = True
        threading.Thread(target=self._loop, name="router", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._redis.hdel(serving_key(self.serves), self._name)

    def tick(self) -> str | None:
        """Decide once; return the mode moved to, if any."""
        with self._lock:
            modes = self.modes()
            backlogs, servers, idle = self._snapshot(modes)
            now = time.monotonic()
            me = WorkerView(
                serving=self.serving if self.serving in modes else None,
                dwell=now - self._since,
                pinned=now < self._pinned_until,
                cached=frozenset(self._cached()),
            )
            target = self._policy.choose(me, backlogs, servers, idle)
            if target is None or target == self.serving:
                self._renew()
                return None
            others = servers.get(target, 0)
            if not self._take(
                keys=[serving_key(self.serves)], args=[self._name, target, others, self._lease_ms, self._state()]
            ):
                self._renew()
                return None
            why = ", ".join(f"{m}: {b.waiting} waiting, oldest {b.oldest_wait:.1f}s" for m, b in backlogs.items())
            log.info("router: %s moves from %s to %s (%s)", self._name, self.serving, target, why)
            self._consume(target)
            return target

    def pin(self, mode: str) -> None:
        """A switch job loaded ``mode`` here: serve it for ROUTER_PIN seconds whatever the backlog."""
        with self._lock:
            self._pinned_until = time.monotonic() + self._pin_seconds
            if mode != self.serving:
                self._take(keys=[serving_key(self.serves)], args=[self._name, mode, ANY, self._lease_ms, self._state()])
                log.info("router: %s pinned to %s by a switch job", self._name, mode)
                self._consume(mode)

    def _state(self) -> str:
        return "busy" if self._busy() else "idle"

    def _renew(self) -> None:
        if self.serving:
            self._take(
                keys=[serving_key(self.serves)], args=[self._name, self.serving, ANY, self._lease_ms, self._state()]
            )

    def _consume(self, mode: str) -> None:
        old, self.serving, self._since = self.serving, mode, time.monotonic()
        if not self._consuming:
            return
        app.control.add_consumer(generation_queue(self.serves, mode), destination=[self._name])
        if old:
            app.control.cancel_consumer(generation_queue(self.serves, old), destination=[self._name])

    def _snapshot(self, modes: list[str]) -> tuple[dict[str, Backlog], dict[str, int], dict[str, int]]:
        """Each mode's backlog, its servers, and how many of them are idle.

        A job counts as waiting from its submit until a worker claims it (the waiting set)
        and while its message is in the queue: a dead worker's job goes back to the queue,
        not to the waiting set.
        """
        pipe = self._redis.pipeline()
        for mode in modes:
            pipe.zrange(waiting_key(self.serves, mode), 0, 0, withscores=True)
            pipe.zcard(waiting_key(self.serves, mode))
            pipe.llen(generation_queue(self.serves, mode))
        pipe.hgetall(serving_key(self.serves))
        pipe.time()
        *per_mode, serving, (seconds, micros) = pipe.execute()
        now = seconds + micros / 1e6
        servers: dict[str, int] = {}
        idle: dict[str, int] = {}
        for value in serving.values():
            mode, expires, state = value.decode().split("|")
            if int(expires) >= now * 1000:
                servers[mode] = servers.get(mode, 0) + 1
                idle[mode] = idle.get(mode, 0) + (state == "idle")
        rows = [per_mode[3 * i : 3 * i + 3] for i in range(len(modes))]
        stale = self._stale_oldest(modes, [oldest for oldest, _, _ in rows])
        backlogs = {}
        for mode, (oldest, count, queued) in zip(modes, rows, strict=True):
            if mode in stale:
                oldest, count = [], count - 1
            waiting = max(count, queued)
            backlogs[mode] = Backlog(
                waiting,
                oldest_wait=now - oldest[0][1] if oldest else 0.0,
                unserved_for=self._unserved_for(mode, waiting > 0 and not servers.get(mode)),
            )
        return backlogs, servers, idle

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
            self._redis.zrem(waiting_key(self.serves, mode), job_id)
        return {mode for mode, _ in stale}

    def _unserved_for(self, mode: str, unserved: bool) -> float:
        if not unserved:
            self._unserved_since.pop(mode, None)
            return 0.0
        return time.monotonic() - self._unserved_since.setdefault(mode, time.monotonic())

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception as exc:
                log.warning("router of %s: %s", self._name, exc)
