"""Keep a worker on the queue of every mode its backend serves, as the modes config changes."""

from __future__ import annotations

import logging
import threading

from jobs.keys import CUSTOM_QUEUE, generation_queue
from modes import ModesConfig
from modes.registry import ModesRegistry
from tasks.celery_app import app

log = logging.getLogger(__name__)
INTERVAL = 2.0


def queues_for(config: ModesConfig, serves: str) -> list[str]:
    """The generation queue of every mode the backend serves, then the custom-job queue."""
    return [generation_queue(serves, m.name) for m in config.modes.values() if m.backend == serves] + [CUSTOM_QUEUE]


class QueueFollower:
    def __init__(self, registry: ModesRegistry, serves: str, initial: list[str]) -> None:
        self._registry = registry
        self._serves = serves
        self.queues = list(initial)
        self._hostname = ""
        self._stop = threading.Event()

    def start(self, hostname: str) -> None:
        self._hostname = hostname
        threading.Thread(target=self._loop, name="queue-follower", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.sync()
            except Exception as exc:
                log.warning("could not follow the modes config: %s", exc)

    def sync(self) -> None:
        wanted = queues_for(self._registry.current(), self._serves)
        for queue in sorted(set(wanted) - set(self.queues)):
            log.info("modes config: now consuming %s", queue)
            app.control.add_consumer(queue, destination=[self._hostname])
        for queue in sorted(set(self.queues) - set(wanted)):
            log.info("modes config: no longer consuming %s", queue)
            app.control.cancel_consumer(queue, destination=[self._hostname])
        self.queues = wanted
