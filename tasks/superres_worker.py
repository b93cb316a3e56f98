"""Start a super-resolution worker: ``python -m tasks.superres_worker [celery options]``.

It consumes only the ``superres`` queue, with SR_NUM_WORKERS pool processes (prefork,
late ack, prefetch 1), so a burst of SR jobs never stalls generation and generation
never stalls SR.  Each pool process loads its own engine after the fork and sends its
own heartbeat; the parent checks the configuration first and refuses to start on a
bad one, saying what to fix.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys

import redis
from celery import signals

from config import SuperResSettings
from jobs import logs
from jobs.superres import SUPERRES_QUEUE
from tasks.celery_app import app
from tasks.heartbeat import Heartbeat
from tasks.superres_context import engine_config, get_superres_runner
from workers.superres.engine import ENGINES, EngineError, preflight

log = logging.getLogger(__name__)
_heartbeats: list[Heartbeat] = []


@signals.worker_process_init.connect(weak=False)
def _start_pool_process(**_) -> None:
    runner = get_superres_runner()
    heartbeat = Heartbeat(runner, f"superres-{os.getpid()}@{socket.gethostname()}", lambda: [SUPERRES_QUEUE], [])
    heartbeat.start()
    _heartbeats.append(heartbeat)


@signals.worker_process_shutdown.connect(weak=False)
def _stop_pool_process(**_) -> None:
    for heartbeat in _heartbeats:
        try:
            heartbeat.stop()
        except redis.RedisError as exc:  # Redis may stop first (make run stops everything at once)
            log.warning("could not remove the heartbeat of pool process %d: %s", os.getpid(), exc)


def main(argv: list[str]) -> None:
    logs.configure()
    logs.quiet_celery_task_lines()
    sr = SuperResSettings.from_env()
    if not sr.enabled:
        raise SystemExit("superres worker not started: SR_ENABLED=0")
    if sr.num_workers < 1:
        raise SystemExit(f"SR_NUM_WORKERS={sr.num_workers}: set it to 1 or more")
    try:
        engine = preflight(engine_config(sr))
    except EngineError as exc:
        raise SystemExit(f"superres worker cannot start: {exc}") from None
    # Import the engine's libraries before the fork (children then start fast; nothing runs yet),
    # and give each pool process time to load its engine before Celery gives up on it.
    importlib.import_module(ENGINES[engine].split(":")[0])
    app.conf.worker_proc_alive_timeout = 120
    name = f"superres-{os.getpid()}@%h"
    log.info(
        "superres worker %s: %d pool processes, engine %s, model %s",
        name.replace("%h", socket.gethostname()),
        sr.num_workers,
        engine,
        sr.model_path,
    )
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={sr.num_workers}",
            "--loglevel=INFO",
            "-n",
            name,
            "-Q",
            SUPERRES_QUEUE,
            *argv,
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
