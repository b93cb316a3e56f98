"""The fleet's control plane: no worker-to-worker gossip, while monitors (Flower) still see every worker."""

from __future__ import annotations

import socket

from celery import Celery

from tests.processes import wait_for

GOSSIP_CHANNEL = "/0.celeryev/worker.heartbeat"  # where kombu's Redis fanout carries a worker's event heartbeat


def worker_events(redis_url: str, hostnames: set[str], timeout: float) -> set[str]:
    """The hostnames among ``hostnames`` that send a worker event, captured as Flower does (celery's event receiver)."""
    monitor = Celery(broker=redis_url)
    seen: set[str] = set()

    def on_event(event: dict) -> None:
        if event["type"].startswith("worker-") and event["hostname"] in hostnames:
            seen.add(event["hostname"])
            if seen == hostnames:
                receiver.should_stop = True

    with monitor.connection_for_read() as connection:
        receiver = monitor.events.Receiver(connection, handlers={"*": on_event})
        try:
            receiver.capture(limit=None, timeout=timeout, wakeup=True)
        except TimeoutError:
            pass
    return seen


def test_workers_do_not_gossip_and_a_monitor_sees_them(make_stack, redis_server):
    stack = make_stack()
    workers = [stack.start_worker(), stack.start_worker()]
    names = {f"torch-{w.pid}@{socket.gethostname()}" for w in workers}
    client = redis_server.client()
    # Each worker listens for control commands (one subscription); none listens to the others' events.
    wait_for(lambda: client.publish("/0.celery.pidbox", "{}") == 2, 30, "both workers' control channels")
    assert client.publish(GOSSIP_CHANNEL, "{}") == 0, "a worker subscribes to other workers' events (gossip)"

    assert worker_events(redis_server.url, names, timeout=30) == names
    replies = Celery(broker=redis_server.url).control.ping(destination=[min(names)], timeout=5)
    assert [next(iter(reply)) for reply in replies] == [min(names)]
