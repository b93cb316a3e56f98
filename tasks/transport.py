"""kombu's Redis transport with one client per channel, and a BRPOP that waits long but never too long.

kombu's Redis channel builds a new ``redis.Redis`` (its table of response callbacks and all)
for every command it sends outside a client or pipeline it was handed: each task event's
PUBLISH, each message's unacked bookkeeping and its ack. That is five clients a job on a
worker, about 0.1 ms of CPU each here, on the path of every job. A ``redis.Redis`` holds no
connection of its own (each command borrows one from the pool), so one per channel serves
them all, from any thread. It is rebuilt when the channel gets a new pool (after a reconnect).

An idle consumer waits for a message in one BRPOP on its queues. kombu's BRPOP gives up
after a second and is sent again: a command a second per idle worker, the largest of an
idle fleet's costs to Redis. A message ends a BRPOP the moment it arrives, whatever the
timeout, so a job's pickup does not depend on it. What did: a BRPOP waits on the queues
consumed when it was sent, so a worker that starts consuming another queue (the router's
``add_consumer``) would not see it until the BRPOP ended, one that stops (``cancel_consumer``)
could still pop a message of the old queue, and closing the channel waited for the reply.
So the channel remembers its BRPOP connection's client id and, on each of those, asks Redis
to end the BRPOP at once (CLIENT UNBLOCK: an empty reply, as a timeout gives), and the next
BRPOP names the queues consumed then. The timeout, BRPOP_TIMEOUT, now only bounds how long a
half-open connection goes unnoticed: kombu drops a BRPOP whose reply is overdue by its
``health_check_interval`` (25 s), so within BRPOP_TIMEOUT + 2 x 25 s.

Registering the ``redis`` and ``rediss`` aliases keeps the broker URL's meaning untouched:
the scheme still picks TLS, and kombu's URL parsing is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)
BRPOP_TIMEOUT = 10  # seconds; kombu's is 1


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

    def _brpop_start(self, timeout: float | None = None) -> None:
        """Send the BRPOP, first learning its connection's client id once per socket (one CLIENT ID)."""
        connection = self.client.connection
        if connection is not None:
            connection.connect()  # kombu connects it first; a no-op then
            if getattr(connection, "dl_client_id", (None, 0))[0] is not connection._sock:
                connection.send_command("CLIENT", "ID")
                connection.dl_client_id = (connection._sock, connection.read_response())
        super()._brpop_start(timeout)

    def basic_consume(self, queue, *args, **kwargs):
        tag = super().basic_consume(queue, *args, **kwargs)
        self._end_brpop()
        return tag

    def _basic_cancel(self, consumer_tag):
        ret = super()._basic_cancel(consumer_tag)
        self._end_brpop()
        return ret

    def close(self) -> None:
        self._end_brpop()
        super().close()

    def _end_brpop(self) -> None:
        """End the BRPOP in flight now (its reply is empty unless a message came first), so the next
        one names the queues consumed now; nothing when none is in flight."""
        connection = self._in_poll
        if not connection:
            return
        sock, client_id = getattr(connection, "dl_client_id", (None, 0))
        if sock is None or sock is not connection._sock:
            return
        try:
            with self.conn_or_acquire() as client:
                client.client_unblock(client_id)
        except redis.RedisError as exc:  # the BRPOP then ends at its timeout, as before
            log.debug("could not end the BRPOP of client %s: %s", client_id, exc)


class Transport(kombu_redis.Transport):
    Channel = Channel
    brpop_timeout = BRPOP_TIMEOUT


def register() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use this transport in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
