"""Dead workers' messages back to their queues: kombu's unacked scan, run for the fleet by one worker.

kombu's Redis transport keeps each delivered message in its unacked hash and index until
the message is acked; the message of a worker that died stays there until a scan
(``QoS.restore_visible``) finds it older than the visibility timeout and pushes it back on
its queue. kombu runs that scan in every consumer, which at a 2 s interval was three
commands every 2 s per worker, nearly always finding nothing: an idle fleet's largest cost
to Redis after the BRPOP. The index is one for the whole broker, so one scanner is enough:
the router that holds its backend's allocator lease (tasks/allocator.py) runs the scan
every RESTORE_EVERY seconds, through kombu's own code on a connection of its own. A dead
worker's message is then back VISIBILITY_TIMEOUT + RESTORE_EVERY seconds after its last
renewal, as before, unless the dead worker held the lease: another router takes the lease
within a few seconds, well inside the visibility timeout. Each worker still runs kombu's
scan at start and every visibility timeout (celeryconfig.py), for a fleet with no
allocator (ROUTER=fifo scans every 2 s in every worker, as before).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis
from kombu import Connection

from tasks.celery_app import app

log = logging.getLogger(__name__)

RESTORE_EVERY = 2.0  # seconds between the allocator's scans
CLIENT_NAME = "dl-restorer"  # the scan's connection in Redis' CLIENT LIST


def broker_connection() -> Connection:
    """A connection to the workers' broker, with their transport options, named CLIENT_NAME."""
    return app.connection_for_write(transport_options={"client_name": CLIENT_NAME})


class Restorer:
    def __init__(self, connect: Callable[[], Connection] = broker_connection, every: float = RESTORE_EVERY) -> None:
        """``connect`` makes the broker connection to scan through (made at the first scan)."""
        self._connect = connect
        self._every = every
        self._connection: Connection | None = None
        self._last = -math.inf

    def __call__(self) -> None:
        """Scan, unless the last scan was less than ``every`` seconds ago."""
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        try:
            if self._connection is None:
                self._connection = self._connect()
            channel = self._connection.default_channel
            channel.qos.restore_visible(num=channel.unacked_restore_limit, interval=1)
        except (redis.RedisError, OSError) as exc:  # the allocator's summary goes on; the next scan reconnects
            log.warning("could not scan for dead workers' messages: %s", exc)
            self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except (redis.RedisError, OSError):
                pass  # a broken connection has nothing left to close
