"""Task events in batches: one PUBLISH per FLUSH_DELAY at most, not one per event.

Celery's worker buffers task events and has its event loop flush the buffer as soon as
it can, so each job's ``task-received``, ``task-started`` and ``task-succeeded`` was a
PUBLISH of its own, sent while the job ran; ``task-started`` comes from the pool thread and
woke the loop first.  Measured on a no-op job: events were about 1 ms of the worker's
5 ms of CPU, and each took the interpreter lock from the job's thread.  Here the first
event after a flush schedules the next flush FLUSH_DELAY later, and every event sent
meanwhile goes with it: a steady stream of jobs costs one PUBLISH per interval.  Flower and
``celery events`` see each event at most FLUSH_DELAY later; a worker that stops flushes
what it holds first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from celery import bootsteps
from celery.worker.consumer import Consumer
from kombu.asynchronous import Hub
from kombu.common import ignore_errors

FLUSH_DELAY = 0.1  # seconds


class _Batcher:
    """Turns "events are buffered" into one flush FLUSH_DELAY later, from any thread."""

    def __init__(self, hub: Hub, flush: Callable[[], None]) -> None:
        self._hub = hub
        self._flush = flush
        self._lock = threading.Lock()
        self._pending = False

    def buffered(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
        self._hub.call_soon(self._schedule)  # wakes the loop when called from the pool thread

    def _schedule(self) -> None:
        self._hub.call_later(FLUSH_DELAY, self.flush)  # the loop's timer: only from the loop's thread

    def flush(self) -> None:
        with self._lock:
            self._pending = False  # an event buffered from here on schedules the next flush
        self._flush()


class BatchedTaskEvents(bootsteps.StartStopStep):
    """A consumer step after Celery's ``Events``: its dispatcher's task events flush in batches."""

    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, consumer: Consumer, **kwargs: object) -> None:
        super().__init__(consumer, **kwargs)
        self._batcher: _Batcher | None = None

    def start(self, consumer: Consumer) -> None:
        dispatcher = consumer.event_dispatcher
        if consumer.hub is None or dispatcher is None or not dispatcher.enabled:
            return
        self._batcher = _Batcher(consumer.hub, dispatcher.flush)
        dispatcher.on_send_buffered = self._batcher.buffered

    def stop(self, consumer: Consumer) -> None:
        if self._batcher is not None:
            ignore_errors(consumer, self._batcher.flush)

    shutdown = stop
