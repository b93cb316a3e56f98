"""The workers' kombu transport (tasks/transport.py): broker URLs of both schemes get it, a
channel sends its own commands through one client, rebuilt when the channel's pool changes, and
a BRPOP in flight ends when the queues consumed change or the channel closes."""

from __future__ import annotations

import socket
import threading

import pytest
from kombu import Connection, Consumer, Producer, Queue

from tasks import transport
from tasks.celery_app import app
from tests.processes import wait_for


def test_the_workers_app_connects_through_the_transport(redis_server):
    with app.connection_for_write(redis_server.url) as connection:
        assert isinstance(connection.transport, transport.Transport)
        assert isinstance(connection.default_channel, transport.Channel)
    assert Connection("rediss://127.0.0.1:1/0").get_transport_cls() is transport.Transport


def test_a_channel_publishes_and_acks_through_one_client(redis_server):
    with Connection(redis_server.url) as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.ping()
        given = channel._create_client()
        with channel.conn_or_acquire(given) as passed:
            assert passed is given
        channel._pool = None  # as after a reconnect: the next command uses the new pool
        with channel.conn_or_acquire() as third:
            assert third is not first
            assert third.connection_pool is channel.pool
            assert third.ping()


def forever(connection: Connection):
    """The connection's channel, its BRPOPs waiting for ever: only a message or an end we ask for ends one."""
    channel = connection.default_channel
    channel.brpop_timeout = 0
    return channel


def waiting_brpop(connection: Connection, client) -> None:
    """Send the channel's BRPOP and return once Redis holds it blocked."""
    with pytest.raises(socket.timeout):
        connection.drain_events(timeout=0.2)
    wait_for(lambda: client.info("clients")["blocked_clients"] == 1, 30, "the BRPOP to block")


def test_a_queue_consumed_while_a_brpop_waits_gets_its_message(redis_server):
    client = redis_server.client()
    with Connection(redis_server.url) as connection:
        channel = forever(connection)
        got = []
        Consumer(channel, [Queue("first")], callbacks=[lambda body, message: got.append(body)]).consume()
        waiting_brpop(connection, client)
        Producer(channel).publish("for the second queue", routing_key="second", declare=[Queue("second")])
        Consumer(channel, [Queue("second")], callbacks=[lambda body, message: got.append(body)]).consume()
        connection.drain_events(timeout=60)  # the BRPOP sent before "second" was consumed never ends by itself
        assert got == ["for the second queue"]


def test_a_queue_no_longer_consumed_keeps_what_comes_while_a_brpop_waited_on_it(redis_server):
    client = redis_server.client()
    with Connection(redis_server.url) as connection:
        channel = forever(connection)
        kept = Consumer(channel, [Queue("kept")])
        kept.consume()
        dropped = Consumer(channel, [Queue("dropped")])
        dropped.consume()
        waiting_brpop(connection, client)
        dropped.cancel()
        Producer(channel).publish("left in its queue", routing_key="dropped", declare=[Queue("dropped")])
        # The BRPOP that named "dropped" was ended, unanswered: a BRPOP still waiting on it would take this.
        assert client.llen("dropped") == 1
        with pytest.raises(socket.timeout):
            connection.drain_events(timeout=0.5)
        assert client.llen("dropped") == 1


def test_closing_a_connection_ends_its_waiting_brpop(redis_server):
    client = redis_server.client()
    connection = Connection(redis_server.url)
    channel = forever(connection)
    Consumer(channel, [Queue("nothing comes")]).consume()
    waiting_brpop(connection, client)
    closing = threading.Thread(target=connection.close, daemon=True)
    closing.start()
    closing.join(timeout=60)  # a close that waited for the BRPOP's reply would wait for ever
    assert not closing.is_alive()
    assert client.info("clients")["blocked_clients"] == 0
