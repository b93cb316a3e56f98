"""Worker heartbeats in Redis: what each live worker serves and does, for the API to read.

A worker beats every INTERVAL seconds and at once when its job or its mode changes.  Under
ROUTER=affinity the router writes the beat (tasks/router.py ``Router.beat``), renewing its
own serving entry, busy or idle, in the same script: one write a beat for both."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from jobs.keys import worker_key
from tasks.runner import JobRunner

log = logging.getLogger(__name__)

# Seconds between beats: under a third of TTL, so two beats can be late before a live worker drops out,
# and under the router's own renewal of its entry (a third of its 10 s lease), which the beat carries.
INTERVAL = 3.0
WATCH = 0.2  # how often the loop looks for a change of job or mode to report at once
TTL = 10  # a dead worker drops out of /api/models/status within this many seconds


class Heartbeat:
    def __init__(
        self,
        runner: JobRunner,
        name: str,
        queues: Callable[[], list[str]],
        handlers: list[str],
        serving: Callable[[], str] = str,
        routing: Callable[[], dict[str, str]] = dict,
        write: Callable[[str, dict, int], None] | None = None,
    ) -> None:
        """``queues``, ``serving`` (the mode the router keeps it on) and ``routing`` (more fields from the
        router: the modes config version, the modes whose files this host lacks) are read at every beat;
        ``write(key, fields, ttl)`` writes a beat (the router's, to renew its entry in the same step),
        else the heartbeat writes its hash itself."""
        self._write = write or self._write_hash
        self._handlers = handlers
        self._serving = serving
        self._routing = routing
        self._runner = runner
        self._name = name
        self._queues = queues
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._runner.redis.delete(worker_key(self._name))

    def beat(self) -> None:
        job = self._runner.current_job
        state = {
            "name": self._name,
            "backend": self._runner.backend.name,
            "serves": self._runner.backend.serves,
            "mode": self._runner.backend.loaded_mode or "",
            "serving": self._serving(),
            "switches": self._runner.switches,
            "state": "busy" if job else "idle",
            "job": job or "",
            "queues": json.dumps(self._queues()),
            "cached": json.dumps(sorted(self._runner.backend.cached_modes())),
            "handlers": json.dumps(self._handlers),
            "memory": json.dumps(self._runner.backend.memory_report()),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "updated_at": time.time(),
            **self._routing(),
        }
        self._write(worker_key(self._name), state, TTL)

    def _write_hash(self, key: str, fields: dict, ttl: int) -> None:
        pipe = self._runner.redis.pipeline()
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl)
        pipe.execute()

    def _observed(self) -> tuple[str | None, str | None, str]:
        return self._runner.current_job, self._runner.backend.loaded_mode, self._serving()

    def _loop(self) -> None:
        """Beat every INTERVAL, and at once when the job or the loaded mode changes."""
        while True:
            reported = self._observed()
            try:
                self.beat()
            except Exception as exc:
                log.warning("heartbeat of %s failed: %s", self._name, exc)
            deadline = time.monotonic() + INTERVAL
            while self._observed() == reported and time.monotonic() < deadline:
                if self._stop.wait(WATCH):
                    return
            if self._stop.is_set():
                return
