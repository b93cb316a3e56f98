"""A delivery keeps its turn through a Redis failure: it waits for Redis, never ends early.

A delivery that has read its turn (tasks/turns.py) and not yet claimed a job must not
end: Celery would ack its message (a task that raises is acked, as one that returns),
and a job of its mode could be left waiting with no message to deliver it.  The
bounded soak lost a job so: Redis restarted between a delivery's look and its claim,
the claim raised, and Redis was back for the ack.  So a Redis error in that stretch is
waited out, the message held, and the turn taken again from a fresh look, however
long Redis takes to answer (a worker can do nothing else without it).  Once a job is
claimed its lease carries it: a worker that loses Redis afterwards leaves the job
running with no lease, and the sweeper of orphans (tasks/orphans.py) puts it back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

import redis
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")
# Redis' own errors, and kombu's when a publish (a turn's message published again) finds no Redis.
FAILURES = (redis.RedisError, OperationalError)
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 5.0  # seconds between tries, doubling


def until_redis_answers(attempt: Callable[[bool], T], job_id: str, hold: Callable[[], None]) -> T:
    """``attempt(first)`` until it returns without a Redis error (``first``: True on the first try only);
    between tries ``hold()`` keeps the delivery's message from being handed to another worker."""
    first, pause = True, FIRST_PAUSE
    while True:
        try:
            return attempt(first)
        except FAILURES as exc:
            log.warning(
                "job %s: Redis failed this delivery before it claimed a job (%s: %s); "
                "it keeps its message and takes its turn again in %.1f s",
                job_id,
                type(exc).__name__,
                exc,
                pause,
            )
        first = False
        time.sleep(pause)
        pause = min(2 * pause, LONGEST_PAUSE)
        with suppress(redis.RedisError):
            hold()
