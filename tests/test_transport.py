"""The workers' kombu transport (tasks/transport.py): broker URLs of both schemes get it, and a
channel sends its own commands through one client, rebuilt when the channel's pool changes."""

from __future__ import annotations

from kombu import Connection

from tasks import transport
from tasks.celery_app import app


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
