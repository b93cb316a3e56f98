"""The router against a real Redis: backlogs from the waiting sets and queues, atomic moves,
dead servers dropping out.  (Celery consumers are moved only once a worker runs: see
tests/test_router_e2e.py.)"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from config import Settings
from jobs.keys import arrivals_key, generation_queue, summary_key, waiting_key
from jobs.records import CLAIMED, JobRecords, Turn
from modes.registry import ModesRegistry
from tasks.allocator import read_summary
from tasks.celery_app import app
from tasks.restore import Restorer
from tasks.router import Router, TickSchedule
from tests.processes import wait_for


@pytest.fixture
def client(redis_server):
    return redis_server.client()


@pytest.fixture
def registry(client, tmp_path):
    path = tmp_path / "modes.yaml"
    modes = {name: {"model": "m", "scheduler": "lcm"} for name in ("a", "b", "c")}
    modes["edge"] = {"model": "m", "scheduler": "lcm", "backend": "onnx"}
    path.write_text(yaml.safe_dump({"modes": modes}))
    (tmp_path / "m").mkdir()
    registry = ModesRegistry(client, path)
    registry.reload()
    return registry


def router(
    client,
    registry,
    name: str,
    lease_ms: int = 15_000,
    busy: bool = False,
    allocator_ms: int = 3_000,
    restorer: Restorer | None = None,
    **settings,
) -> Router:
    base = dataclasses.replace(Settings.from_env(), router_min_dwell=0.0, **settings)
    return Router(
        client,
        registry,
        "torch",
        name,
        base,
        lease_ms=lease_ms,
        busy=lambda: busy,
        allocator_ms=allocator_ms,
        restorer=restorer,
    )


def enqueue(client, mode: str) -> str:
    job_id = str(uuid.uuid4())
    records = JobRecords(client, ttl=600)
    turn = Turn(waiting_key("torch", mode), 0.0, {})
    records.create(job_id, "generate", mode, {}, [generation_queue("torch", mode)], 100, turn)
    return job_id


def test_only_modes_of_its_backend(client, registry):
    assert router(client, registry, "w1").modes() == ["a", "b", "c"]


def test_new_workers_spread_over_the_modes(client, registry):
    first, second = router(client, registry, "w1"), router(client, registry, "w2")
    first.tick(), second.tick()
    assert (first.serving, second.serving) == ("a", "b")
    assert first.queues == ["gen.torch.a", "custom"]


def test_a_backlog_draws_one_idle_worker_not_both(client, registry):
    first, second = router(client, registry, "w1"), router(client, registry, "w2")
    first.tick(), second.tick()
    enqueue(client, "c")
    moved = [first.tick(), second.tick()]
    assert moved == ["c", None]
    assert (first.serving, second.serving) == ("c", "b")


def test_a_claimed_job_leaves_the_backlog(client, registry):
    job_id = enqueue(client, "b")
    records = JobRecords(client, ttl=600)
    worker = router(client, registry, "w1")
    backlogs, _, _ = worker._snapshot(worker.modes())
    assert backlogs["b"].waiting == 1 and backlogs["b"].oldest_wait >= 0
    assert records.claim(job_id, "token", "w1", 30, waiting_key("torch", "b")) == CLAIMED
    backlogs, _, _ = worker._snapshot(worker.modes())
    assert backlogs["b"].waiting == 0


def test_a_message_back_in_the_queue_counts_and_its_mode_starves_without_a_server(client, registry):
    worker = router(client, registry, "w1", router_starvation=0.3)
    worker.tick()
    enqueue(client, "a")  # keeps w1 busy on its own mode
    client.lpush(generation_queue("torch", "c"), b"a redelivered message")
    assert worker.tick() is None, "not starving yet"  # the router has seen c unserved for no time at all
    wait_for(lambda: worker.tick() == "c", 30, "the router to move to the starving mode")


def test_a_dead_worker_stops_counting_as_a_server(client, registry):
    """A router that stops ticking counts as its mode's server until its lease (here 2 s) runs out."""
    dead = router(client, registry, "dead", lease_ms=2000, allocator_ms=2000)
    dead.tick()
    assert dead.serving == "a" and dead._allocator.holding
    alive = router(client, registry, "alive", allocator_ms=2000)
    _, servers, idle = dead._snapshot(dead.modes())  # the allocator's view
    assert servers == {"a": 1} and idle == {"a": 1}
    # The dead worker held the allocator lease too: the other router takes it over once it lapses.
    wait_for(lambda: alive._snapshot(alive.modes())[1] == {}, 30, "the dead router's entry to lapse")
    assert alive._allocator.holding and client.hkeys("dl:serving:torch") == []


def test_an_expired_record_leaves_the_backlog(client, registry):
    job_id = enqueue(client, "b")
    client.delete(f"dl:job:{job_id}")
    worker = router(client, registry, "w1")
    backlogs, _, _ = worker._snapshot(worker.modes())
    assert backlogs["b"].waiting == 0
    assert client.zcard(waiting_key("torch", "b")) == 0


def test_a_pin_moves_the_worker_and_holds_it(client, registry):
    worker = router(client, registry, "w1", router_pin=60.0)
    worker.tick()
    worker.pin("b")
    assert worker.serving == "b"
    enqueue(client, "c")
    assert worker.tick() is None
    assert worker.serving == "b"


def test_two_workers_that_decided_at_once_do_not_both_take_a_mode(client, registry):
    first, second = router(client, registry, "w1"), router(client, registry, "w2")
    first.tick(), second.tick()
    # Both saw mode c without a server (0 others) and chose it; only the first to act gets it.
    assert first._table.serve("w1", "c", 15_000, "idle", most_others=0)
    assert not second._table.serve("w2", "c", 15_000, "idle", most_others=0)
    assert second._table.serve("w2", "b", 15_000, "busy")  # a renewal always succeeds
    assert second._table.counts() == ({"b": 1, "c": 1}, {"c": 1})


def test_a_canceled_job_leaves_the_backlog(client, registry):
    records = JobRecords(client, ttl=600)
    canceled, kept = enqueue(client, "b"), enqueue(client, "b")
    records.cancel(canceled, waiting_key("torch", "b"))
    assert client.zrange(waiting_key("torch", "b"), 0, -1) == [kept.encode()]


def test_a_job_canceled_without_its_waiting_set_is_pruned_by_the_router(client, registry):
    records = JobRecords(client, ttl=600)
    canceled = enqueue(client, "b")
    records.cancel(canceled)
    worker = router(client, registry, "w1")
    backlogs, _, _ = worker._snapshot(worker.modes())
    assert backlogs["b"].waiting == 0


def test_busy_servers_are_not_idle(client, registry):
    busy, idle = router(client, registry, "busy", busy=True), router(client, registry, "idle")
    busy.tick()
    idle.pin("a")
    _, servers, idle_servers = busy._snapshot(busy.modes())  # the allocator's summary
    assert servers == {"a": 2} and idle_servers == {"a": 1}
    assert idle._table.counts() == (servers, idle_servers)


# A consumer that takes a message, as a worker does (unacked, in kombu's index), then dies without a word.
DIE_HOLDING = """
import os, sys
from kombu import Connection, Producer, Queue
with Connection(sys.argv[1]) as connection:
    channel = connection.default_channel
    Producer(channel).publish("a dead worker's job", routing_key=sys.argv[2], declare=[Queue(sys.argv[2])])
    message = channel.basic_get(sys.argv[2], no_ack=False)
    print(message.delivery_tag, flush=True)
    os._exit(0)
"""


def die_holding(url: str, queue: str) -> str:
    """The delivery tag of a message that a consumer took from ``queue`` and never acked: it died."""
    done = subprocess.run([sys.executable, "-c", DIE_HOLDING, url, queue], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_allocators_router_restores_a_dead_workers_message_and_no_other_router_scans(
    client, registry, redis_server
):
    def scanner() -> Restorer:  # scans at every chance it is given
        return Restorer(lambda: app.connection_for_write(redis_server.url), every=0)

    holder, other = (
        router(client, registry, "w1", restorer=scanner()),
        router(client, registry, "w2", restorer=scanner()),
    )
    holder.tick(), other.tick()
    assert client.get("dl:allocator:torch") == b"w1"
    queue = generation_queue("torch", "a")
    tag = die_holding(redis_server.url, queue)
    assert client.llen(queue) == 0 and client.hexists("unacked", tag)
    client.zadd("unacked_index", {tag: time.time() - 3600}, xx=True)  # it died an hour ago

    sent = sent_by(client, other.tick)
    assert sent and not [c for c in sent if "unacked" in c], sent
    assert client.llen(queue) == 0

    holder.tick()
    assert client.llen(queue) == 1
    assert not client.hexists("unacked", tag) and client.zscore("unacked_index", tag) is None
    holder.stop(), other.stop()


def sent_by(client, call) -> list[str]:
    """The commands sent to Redis by ``call()`` (MONITOR; not a script's own, nor a new connection's handshake)."""
    with client.monitor() as feed:
        call()
        client.ping()  # the last command watched
        sent = []
        while (command := feed.next_command())["command"] != "PING":
            if command["client_type"] != "lua" and not command["command"].startswith("HELLO"):
                sent.append(command["command"])
    return sent


def test_the_summary_tells_every_router_how_long_the_backend_has_admitted_nothing(client, registry):
    allocating, other = router(client, registry, "w1"), router(client, registry, "w2")
    allocating.tick()
    first = read_summary(client.get(summary_key("torch"))).last_arrival
    assert first is not None, "quiet since the holder's first reading"
    time.sleep(0.3)
    allocating.tick()
    assert read_summary(client.get(summary_key("torch"))).last_arrival == first
    assert other._view()[4] >= 0.3, "another router reads the silence off the summary"
    client.incr(arrivals_key("torch", "b"))  # as the API's admission does
    allocating.tick()
    latest = read_summary(client.get(summary_key("torch")))
    assert latest.last_arrival > first and latest.last_arrival == latest.at
    assert other._view()[4] < 0.3


def test_a_steady_tick_is_one_read_of_the_summary_and_redis_clock_is_read_once_a_minute(client, registry):
    holder, other = router(client, registry, "w1"), router(client, registry, "w2")
    holder.tick(), other.tick()
    assert sent_by(client, other.tick) == ["GET dl:summary:torch"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(other._clock, "_every", 0.0)  # as when a minute has passed
        assert sent_by(client, other.tick) == ["GET dl:summary:torch", "TIME"]


def test_the_heartbeat_renews_the_routers_entry_busy_or_idle_in_its_own_write(client, registry):
    running = []  # the worker's job, when it has one
    settings = dataclasses.replace(Settings.from_env(), router_min_dwell=0.0)
    holder = router(client, registry, "w0")  # the allocator: its ticks read the fleet
    worker = Router(client, registry, "torch", "w1", settings, busy=lambda: bool(running))
    holder.tick(), worker.tick()
    worker.beat("dl:worker:w1", {"name": "w1", "state": "idle"}, 10)
    assert worker.serving == "b" and worker._table.counts() == ({"a": 1, "b": 1}, {"a": 1, "b": 1})

    running.append("a job")
    sent = sent_by(client, lambda: worker.beat("dl:worker:w1", {"name": "w1", "state": "busy"}, 10))
    assert [c.split()[0] for c in sent] == ["EVALSHA"]
    assert worker._table.counts() == ({"a": 1, "b": 1}, {"a": 1})
    assert client.hget("dl:worker:w1", "state") == b"busy" and client.ttl("dl:worker:w1") > 0
    assert sent_by(client, worker.tick) == ["GET dl:summary:torch"]  # the flip is written: the tick writes nothing

    worker.stop()
    worker.beat("dl:worker:w1", {"name": "w1", "state": "busy"}, 10)  # a last beat as the worker stops
    assert client.hget("dl:worker:w1", "name") == b"w1"
    assert worker._table.counts() == ({"a": 1}, {"a": 1}) and not client.hexists("dl:serving:torch", "w1")


def test_a_busy_worker_ticks_every_busy_interval_and_at_once_when_its_job_ends():
    schedule = TickSchedule(interval=0.5, busy_every=3.0)
    assert schedule.due(0.0, busy=False)
    schedule.ticked(0.0)
    assert not schedule.due(0.4, busy=False) and schedule.due(0.5, busy=False)
    schedule.ticked(0.5)
    assert not schedule.due(1.0, busy=True) and not schedule.due(3.4, busy=True), "a job runs: it cannot move yet"
    assert schedule.due(3.5, busy=True), "... but a starving mode may pull it after this job"
    schedule.ticked(3.5)
    assert schedule.due(3.6, busy=False), "the job ended: decide at once"
    schedule.ticked(3.6)
    assert not schedule.due(3.7, busy=False)
    assert schedule.due(4.2, busy=True, allocating=True), "the allocator ticks on: its lease and the summary"
    fast = TickSchedule(interval=0.5, busy_every=0.1)  # a starvation bound shorter than ten intervals
    fast.ticked(0.0)
    assert not fast.due(0.4, busy=True) and fast.due(0.5, busy=True), "never more often than every interval"
