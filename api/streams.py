"""One API process's open event streams, fed by a single Redis subscription.

A thread (started with the first stream) holds one pattern subscription to every job's
channel (jobs/events.py) and hands each message to the queues of the streams open on that
job.  So an API process uses one Redis connection for all its streams, and any process serves
any job.  At most SSE_MAX_STREAMS streams are open at once: each holds one of gunicorn's
threads (gunicorn.conf.py) for as long as it lasts, and the threads beyond the bound keep
answering ordinary requests.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from api.errors import ApiError
from jobs import events

log = logging.getLogger(__name__)
EXTENSION = "dreamlab.streams"
RECONNECT_DELAY = 1.0  # seconds between attempts while Redis is unreachable


def redis_connections() -> int:
    """Connections an API process's Redis pool may open: one per gunicorn thread (API_THREADS) and a
    margin for the subscription and the modes watcher; redis-py's default of 100 fails requests
    beyond it."""
    return max(100, int(os.environ.get("API_THREADS") or 64) + 16)


@dataclass(frozen=True)
class StreamSettings:
    keepalive: float
    max_streams: int

    @classmethod
    def from_env(cls) -> StreamSettings:
        keepalive = float(os.environ.get("SSE_KEEPALIVE") or 15)
        max_streams = int(os.environ.get("SSE_MAX_STREAMS") or 48)
        if keepalive <= 0 or max_streams < 0:
            raise SystemExit("SSE_KEEPALIVE must be > 0 and SSE_MAX_STREAMS >= 0")
        return cls(keepalive, max_streams)


class StreamHub:
    """Streams open in this process, per job, and the thread that feeds them."""

    def __init__(self, client: redis.Redis, settings: StreamSettings) -> None:
        self._redis = client
        self.settings = settings
        self._lock = threading.Lock()
        self._listeners: dict[str, set[queue.SimpleQueue]] = defaultdict(set)
        self._open = 0
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()

    @property
    def open_streams(self) -> int:
        return self._open

    @contextmanager
    def listen(self, job_id: str) -> Iterator[queue.SimpleQueue]:
        """A queue of the job's events (dicts) from the moment the subscription is known to be live,
        or a 503 when SSE_MAX_STREAMS streams are open in this process."""
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            if self._open >= self.settings.max_streams:
                raise ApiError(
                    503,
                    f"this API process has SSE_MAX_STREAMS={self.settings.max_streams} event streams open; "
                    "retry later or poll GET /api/jobs/<id>",
                    headers={"Retry-After": "5"},
                )
            self._open += 1
            self._listeners[job_id].add(inbox)
            self._start()
        try:
            # Events published before the subscription is live would be lost: the caller reads the record after.
            self._subscribed.wait(timeout=5)
            yield inbox
        finally:
            with self._lock:
                self._open -= 1
                self._listeners[job_id].discard(inbox)
                if not self._listeners[job_id]:
                    del self._listeners[job_id]

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="event-streams", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self._relay()
            except redis.RedisError as exc:
                self._subscribed.clear()
                log.warning("event streams: Redis subscription lost (%s); resubscribing", exc)
                time.sleep(RECONNECT_DELAY)

    def _relay(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            pubsub.psubscribe(events.PATTERN)
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message and message["type"] == "psubscribe":
                    self._subscribed.set()  # Redis confirmed: from here on no event is missed
                elif message and message["type"] == "pmessage":
                    self._deliver(events.job_of(message["channel"].decode()), json.loads(message["data"]))
        finally:
            pubsub.close()

    def _deliver(self, job_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            inboxes = list(self._listeners.get(job_id, ()))
        for inbox in inboxes:
            inbox.put(event)
