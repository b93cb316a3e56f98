"""Start a worker for this machine's backend: ``python -m tasks.worker [celery options]``.

It consumes the generation queue of every mode in modes.yaml that its backend
can run, following the fleet's modes config as it is reloaded (tasks/queue_follower.py),
with the solo pool (one process per device; it never forks after touching CUDA), late
ack and prefetch 1 (celeryconfig.py).  A backend that runs several jobs at once
(``concurrency``: the rknn backend's NUM_WORKERS NPU contexts) gets the threads pool
with that many threads instead.
"""

from __future__ import annotations

import logging
import os
import sys

from celery import signals

from config import Settings
from jobs.keys import CUSTOM_QUEUE
from modes import ModesError
from modes.registry import ModesRegistry
from tasks.celery_app import app
from tasks.context import get_runner
from tasks.heartbeat import Heartbeat
from tasks.queue_follower import QueueFollower, queues_for
from workers.custom_handlers import load_handler_modules

log = logging.getLogger(__name__)


def initial_queues(registry: ModesRegistry, serves: str, settings: Settings) -> list[str]:
    try:
        queues = queues_for(registry.current(), serves)
    except ModesError as exc:
        raise SystemExit(f"worker cannot start: {exc}") from None
    if queues == [CUSTOM_QUEUE]:
        raise SystemExit(f"worker cannot start: no mode in {settings.modes_file} has backend {serves!r}")
    return queues


def pool_options(backend: object) -> list[str]:
    concurrency = getattr(backend, "concurrency", 1)
    return ["--pool=solo"] if concurrency == 1 else ["--pool=threads", f"--concurrency={concurrency}"]


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    runner = get_runner()
    handlers = load_handler_modules()
    registry = ModesRegistry(runner.redis, settings.modes_file)
    registry.reload()
    queues = initial_queues(registry, runner.backend.serves, settings)
    follower = QueueFollower(registry, runner.backend.serves, queues)
    name = f"{runner.backend.name}-{os.getpid()}@%h"
    heartbeats: list[Heartbeat] = []

    @signals.worker_ready.connect(weak=False)
    def start_threads(sender, **_):
        follower.start(sender.hostname)
        heartbeat = Heartbeat(runner, sender.hostname, lambda: follower.queues, handlers)
        heartbeat.start()
        heartbeats.append(heartbeat)

    @signals.worker_shutdown.connect(weak=False)
    def stop_threads(**_):
        follower.stop()
        for heartbeat in heartbeats:
            heartbeat.stop()

    log.info("worker %s consumes %s", name, ", ".join(queues))
    pool = pool_options(runner.backend)
    app.worker_main(["worker", *pool, "--loglevel=INFO", "-n", name, "-Q", ",".join(queues), *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
