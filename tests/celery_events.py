"""Watch a stack's Celery events as Flower does: a receiver thread feeding celery's own State."""

from __future__ import annotations

import threading

from celery import Celery
from celery.events.state import State

from tests.processes import wait_for


class EventWatch:
    """Task and worker states as the workers' events tell them; start it before the tasks to watch."""

    def __init__(self, broker_url: str) -> None:
        self.app = Celery(broker=broker_url)
        self.state: State = self.app.events.State()
        self._receiver = None
        self._thread = threading.Thread(target=self._capture, name="event-watch", daemon=True)

    def _capture(self) -> None:
        with self.app.connection() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self.state.event})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> EventWatch:
        """Start listening; returns once a worker heartbeat came through (so nothing sent after is missed)."""
        self._thread.start()
        wait_for(lambda: any(w.alive for w in self.state.workers.values()), 60, "a worker-heartbeat event")
        return self

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=10)

    def task(self, task_id: str, state: str, also=lambda task: True, timeout: float = 120):
        """The task ``task_id`` once the events put it in ``state`` (and ``also`` holds of it)."""

        def reached():
            task = self.state.tasks.get(task_id)
            return task if task is not None and task.state == state and also(task) else None

        return wait_for(reached, timeout, f"task {task_id} to be {state}")
