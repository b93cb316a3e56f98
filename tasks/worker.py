"""Start a worker for this machine's backend: ``python -m tasks.worker [celery options]``.

Under ROUTER=affinity (the default) the worker consumes the generation queue of one
mode at a time, the one tasks/router.py chooses (the mode it has loaded, unless
another mode's backlog needs it more), plus the custom-job queue.  Under ROUTER=fifo
it consumes its backend's one queue and switches models whenever the next job
needs another (the original Dream Lab's behaviour; kept to measure the router against).
It runs Celery's threads pool (nothing forks, so nothing forks after touching CUDA),
late ack and prefetch 1 (celeryconfig.py), with one thread per job the backend runs at
once (``concurrency``: 1, or the rknn backend's NUM_WORKERS NPU contexts).  The job
runs in a pool thread, so the consumer's main thread keeps answering while it does:
event heartbeats, ``celery inspect active/ping/stats`` and Flower see a busy worker
online with its running task (the solo pool ran the job on that thread and fell
silent until it ended).
Workers neither gossip nor mingle (Celery's worker-to-worker event traffic grows with
the square of the fleet), and send an event heartbeat every EVENT_HEARTBEAT seconds, not
2; the project's own heartbeats (tasks/heartbeat.py) tell who is alive, and monitors
such as Flower still receive every worker's events.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from urllib.parse import urlsplit

import redis
from celery import signals

from config import Settings
from jobs import logs
from jobs.keys import CUSTOM_QUEUE, fifo_queue
from modes import ModesError
from modes.registry import ModesRegistry
from modes.roots import ModelRoots
from tasks.celery_app import app
from tasks.context import get_runner
from tasks.heartbeat import Heartbeat
from tasks.orphans import OrphanSweeper
from tasks.restore import Restorer
from tasks.router import Router
from workers.custom_handlers import load_handler_modules

log = logging.getLogger(__name__)


def check_redis(url: str) -> None:
    """Exit with a line that says why when Redis refuses this worker: a wrong user or password, or
    a plain connection where Redis requires TLS (or TLS it cannot verify)."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=10).ping()
    except redis.AuthenticationError as exc:
        why = f"Redis at {where} refused REDIS_URL's user or password ({exc})"
        raise SystemExit(f"worker cannot start: {why}") from None
    except redis.ConnectionError as exc:
        hint = "; use rediss:// where Redis requires TLS" if parts.scheme == "redis" else ""
        raise SystemExit(f"worker cannot start: no Redis session with {where} ({exc}){hint}") from None


def first_queues(router: Router, settings: Settings) -> list[str]:
    """The queues to start on, or exit with why there are none."""
    try:
        modes = router.modes()
    except ModesError as exc:
        raise SystemExit(f"worker cannot start: {exc}") from None
    if not modes:
        raise SystemExit(f"worker cannot start: no mode in {settings.modes_file} has backend {router.serves!r}")
    if settings.router == "fifo":
        return [fifo_queue(router.serves), CUSTOM_QUEUE]
    router.tick()
    return router.queues


# Seconds between a worker's event heartbeats (Celery's default: 2).  Only monitors read them (the
# project's own heartbeats say who is alive): Flower counts a worker online until twice this long
# after its last one, so it shows a crashed worker offline within 20 s (a clean stop says so at once).
EVENT_HEARTBEAT = 10
# Gossip delivers every worker's event heartbeat to every other worker; mingle asks them all at start.
QUIET = ["--without-gossip", "--without-mingle", f"--heartbeat-interval={EVENT_HEARTBEAT}"]


def pool_options(backend: object) -> list[str]:
    """Celery's threads pool, one thread per job ``backend`` runs at once."""
    return ["--pool=threads", f"--concurrency={getattr(backend, 'concurrency', 1)}"]


def main(argv: list[str]) -> None:
    logs.configure()
    logs.quiet_celery_task_lines()
    settings = Settings.from_env()
    check_redis(settings.redis_url)
    runner = get_runner()
    handlers = load_handler_modules()
    registry = ModesRegistry(runner.redis, settings.modes_file)
    registry.follow()
    runner.roots = ModelRoots.from_env(registry.current)
    name = f"{runner.backend.name}-{os.getpid()}@{socket.gethostname()}"
    router = Router(
        runner.redis,
        registry,
        runner.backend.serves,
        name,
        settings,
        cached=runner.backend.cached_modes,
        busy=lambda: runner.occupied,
        roots=runner.roots,
        restorer=Restorer(),
    )
    queues = first_queues(router, settings)
    affinity = settings.router == "affinity"
    heartbeats: list[Heartbeat] = []

    def modes() -> list[tuple[str, str]]:
        return [(mode.backend, mode.name) for mode in registry.current().modes.values()]

    orphans = OrphanSweeper(runner.redis, runner.records, settings.router, settings.lease_ttl, name, modes)

    @signals.worker_ready.connect(weak=False)
    def start_threads(sender, **_):
        if affinity:
            runner.on_switch_job = router.pin
            router.start()
        consumed = (lambda: router.queues) if affinity else (lambda: queues)
        write = router.beat if affinity else None
        heartbeat = Heartbeat(runner, name, consumed, handlers, lambda: router.serving or "", router.state, write)
        heartbeat.start()
        heartbeats.append(heartbeat)
        orphans.start()

    @signals.worker_shutdown.connect(weak=False)
    def stop_threads(**_):
        router.stop()
        orphans.stop()
        for heartbeat in heartbeats:
            heartbeat.stop()

    log.info("worker %s consumes %s (ROUTER=%s)", name, ", ".join(queues), settings.router)
    pool = pool_options(runner.backend)
    app.worker_main(["worker", *pool, "--loglevel=INFO", "-n", name, "-Q", ",".join(queues), *QUIET, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
