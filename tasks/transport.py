"""kombu's Redis transport with one client per channel for the commands it sends on its own.

kombu's Redis channel builds a new ``redis.Redis`` (its table of response callbacks and all)
for every command it sends outside a client or pipeline it was handed: each task event's
PUBLISH, each message's unacked bookkeeping and its ack. That is five clients a job on a
worker, about 0.1 ms of CPU each here, on the path of every job. A ``redis.Redis`` holds no
connection of its own (each command borrows one from the pool), so one per channel serves
them all, from any thread. It is rebuilt when the channel gets a new pool (after a reconnect).

Registering the ``redis`` and ``rediss`` aliases keeps the broker URL's meaning untouched:
the scheme still picks TLS, and kombu's URL parsing is the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _own_client: redis.Redis | None = None

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        if client:
            yield client
            return
        if self._own_client is None or self._own_client.connection_pool is not self.pool:
            self._own_client = self._create_client()
        yield self._own_client


class Transport(kombu_redis.Transport):
    Channel = Channel


def register() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use this transport in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
