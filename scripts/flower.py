"""Flower for Dream Lab: ``python -m scripts.flower [flower options]``.

Flower's broker page lists the queues its workers report consuming, and only the
configured default queue before any does.  A Dream Lab worker consumes one mode's
queue at a time (tasks/router.py), so the other modes' backlogs would not show.  This
entry point adds every queue the modes config names (each mode's generation queue,
``custom``, ``superres``), read from the fleet's published config at each page load,
then runs ``celery flower`` with the project's Celery settings.  Flower reads its
options from ``FLOWER_*`` variables too (``FLOWER_BASIC_AUTH``, set by `make run`).
"""

from __future__ import annotations

import sys

import redis
from celery import Celery
from flower.views import BaseHandler

from config import Settings
from jobs.keys import CUSTOM_QUEUE, mode_queue
from jobs.superres import SUPERRES_QUEUE
from modes import ModesError
from modes.registry import ModesRegistry


def dreamlab_queues(registry: ModesRegistry, router: str) -> set[str]:
    """Every queue the modes config sends work to."""
    try:
        modes = registry.current().modes.values()
    except ModesError:
        modes = []
    return {CUSTOM_QUEUE, SUPERRES_QUEUE} | {mode_queue(router, m.backend, m.name) for m in modes}


def main(argv: list[str]) -> None:
    settings = Settings.from_env()
    registry = ModesRegistry(redis.Redis.from_url(settings.redis_url), settings.modes_file)
    reported = BaseHandler.get_active_queue_names

    def queue_names(handler: BaseHandler) -> list[str]:
        return sorted(set(reported(handler)) | dreamlab_queues(registry, settings.router))

    BaseHandler.get_active_queue_names = queue_names
    app = Celery("dreamlab")
    app.config_from_object("celeryconfig")
    app.start(["flower", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
