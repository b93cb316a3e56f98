"""The fleet's control plane: no worker-to-worker gossip, while monitors (Flower) still see every worker."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import redis
from celery import Celery

from modes.registry import _PUBLISH
from tasks.restore import RESTORE_EVERY
from tasks.worker import EVENT_HEARTBEAT
from tests.client import poll, submit
from tests.processes import wait_for

GOSSIP_CHANNEL = "/0.celeryev/worker.heartbeat"  # where kombu's Redis fanout carries a worker's event heartbeat
ROUTER_INTERVAL = 0.2  # tests/processes.py stack_env
IDLE_TICKS = 50  # router intervals watched (10 s): every bound below is a count per interval, not a speed
COMMANDS_PER_WORKER_TICK = 10  # besides the backlog reads; measured 2026-12-03: about 7 (2026-12-02: about 9)
BRPOPS_PER_WORKER = 3  # in the intervals watched: a BRPOP waits BRPOP_TIMEOUT (10 s); kombu's 1 s sent 10
TAKEOVER = 20  # seconds: the allocator lease (3 s) and a stale summary (3 s), with room for a loaded machine


def worker_heartbeats(redis_url: str, hostnames: set[str], timeout: float) -> dict[str, float]:
    """The hostnames among ``hostnames`` that send an event heartbeat, each with the interval it announces,
    captured as Flower does (celery's event receiver)."""
    monitor = Celery(broker=redis_url)
    seen: dict[str, float] = {}

    def on_event(event: dict) -> None:
        if event["type"] == "worker-heartbeat" and event["hostname"] in hostnames:
            seen[event["hostname"]] = event["freq"]
            if seen.keys() == hostnames:
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

    # Flower counts a worker online for twice the interval it announces after each heartbeat.
    assert worker_heartbeats(redis_server.url, names, timeout=3 * EVENT_HEARTBEAT) == dict.fromkeys(
        names, EVENT_HEARTBEAT
    )
    # A worker still starting up may miss one ping on a loaded machine: ask again until it answers.
    control = Celery(broker=redis_server.url).control
    replies = wait_for(lambda: control.ping(destination=[min(names)], timeout=5), 60, "the addressed worker's pong")
    assert [next(iter(reply)) for reply in replies] == [min(names)]


def serving_entries(client) -> dict[str, str]:
    """Worker -> the mode it serves, from the routers' own entries."""
    return {k.decode(): v.decode().split("|")[0] for k, v in client.hgetall("dl:serving:torch").items()}


def test_the_allocators_holder_killed_another_takes_over_and_serves_a_waiting_mode(make_stack, redis_server):
    stack = make_stack()
    workers = [stack.start_worker(), stack.start_worker()]
    base = stack.start_api()
    client = redis_server.client()
    wait_for(lambda: len(serving_entries(client)) == 2, 60, "both workers serving a mode")
    holder = wait_for(lambda: client.get("dl:allocator:torch"), 30, "an elected allocator").decode()
    [victim] = [w for w in workers if f"-{w.pid}@" in holder]
    victim.kill()
    victim.wait()
    [survivor] = [name for name in serving_entries(client) if name != holder]
    mode = "styled" if serving_entries(client)[survivor] == "demo" else "demo"

    job = submit(base, mode=mode, prompt="waits for a move only the allocator's summary can tell of")
    # Well before the dead holder's last summary expires (10 allocator leases): a takeover, not a restart.
    wait_for(lambda: client.get("dl:allocator:torch") == survivor.encode(), TAKEOVER, "the survivor to allocate")
    assert poll(base, job["id"], timeout=120)["status"] == "succeeded"
    # The allocator drops the dead worker's entry once its lease runs out, which may be after the job.
    wait_for(lambda: serving_entries(client) == {survivor: mode}, 60, "the dead worker's entry to be dropped")


def monitor(redis_url: str, seconds: float) -> list[list[str]]:
    """Every command Redis runs for ``seconds`` (MONITOR), as [name, *args] in lower case names."""
    client = redis.Redis.from_url(redis_url)
    commands = []
    with client.monitor() as feed:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            words = feed.next_command()["command"].split()
            commands.append([words[0].lower(), *words[1:]])
    return commands


def watching(master: int, count: int) -> bool:
    """Whether gunicorn ``master`` has ``count`` workers, each past its start-up reload (it watches the file)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()

    def inotify(pid: str) -> bool:
        try:
            return any(os.readlink(fd) == "anon_inode:inotify" for fd in Path(f"/proc/{pid}/fd").iterdir())
        except FileNotFoundError:
            return False

    return len(children) == count and all(inotify(pid) for pid in children)


def test_an_idle_api_and_idle_workers_cost_redis_a_bounded_rate_and_never_reload_modes(make_stack, redis_server):
    stack = make_stack()  # MODES_WATCH is on
    stack.start_worker(), stack.start_worker()
    stack.start_api()
    client = redis_server.client()
    wait_for(lambda: len(serving_entries(client)) == 2, 60, "both workers serving a mode")
    publish = hashlib.sha1(_PUBLISH.encode()).hexdigest()
    modes = len(json.loads(client.get("dl:summary:torch"))["modes"])

    wait_for(lambda: watching(stack.processes[-1].pid, 2), 60, "both API processes watching the modes file")

    commands = monitor(redis_server.url, IDLE_TICKS * ROUTER_INTERVAL)
    reloads = [c for c in commands if c[0] == "evalsha" and c[1] == publish]
    assert reloads == [], f"{len(reloads)} modes reloads in {IDLE_TICKS} idle router intervals"
    # One reader of every mode's backlog and of every worker's entry (the allocator), not one per worker.
    backlog = [c for c in commands if c[0] in ("zrange", "zcard", "llen")]
    assert len(backlog) <= 1.5 * 3 * modes * IDLE_TICKS, f"{len(backlog)} backlog reads"
    fleet_reads = sum(c[:2] == ["hgetall", "dl:serving:torch"] for c in commands)
    assert fleet_reads <= 1.5 * IDLE_TICKS, f"{fleet_reads} reads of every worker's entry"
    per_worker = (len(commands) - len(backlog)) / IDLE_TICKS / 2
    assert per_worker <= COMMANDS_PER_WORKER_TICK, f"{per_worker:.1f} Redis commands per interval per idle worker"
    # Celery's polling: one scan of kombu's unacked index for the fleet every RESTORE_EVERY (the allocator's),
    # each worker's own at most once (every VISIBILITY_TIMEOUT, 30 s); a BRPOP per worker per 10 s.
    watched = IDLE_TICKS * ROUTER_INTERVAL
    scans = sum(c[:2] == ["zrange", "unacked_index"] for c in commands)
    assert scans <= watched / RESTORE_EVERY + 1 + 2, f"{scans} scans of kombu's unacked index in {watched:g} s"
    brpops = sum(c[0] == "brpop" for c in commands)
    assert brpops <= 2 * BRPOPS_PER_WORKER, f"{brpops} BRPOPs of 2 idle workers in {watched:g} s"


def entry_states(client) -> list[str]:
    """Each router's entry's state (busy or idle), as the heartbeats last wrote them."""
    return [v.decode().rsplit("|", 1)[1] for v in client.hgetall("dl:serving:torch").values()]


def test_a_worker_running_a_job_reads_the_summary_a_tenth_of_the_starvation_bound_apart(make_stack, redis_server):
    # ROUTER_STARVATION 20 s: a busy worker's router ticks every 2 s (10 intervals), the allocator's every interval.
    stack = make_stack(WORKER_BACKEND="timed", TIMED_DECODE_SECONDS="120", ROUTER_STARVATION="20")
    stack.start_worker(), stack.start_worker()
    base = stack.start_api()
    client = redis_server.client()
    wait_for(lambda: len(serving_entries(client)) == 2, 60, "both workers serving a mode")
    for mode in serving_entries(client).values():  # one job for each worker
        submit(base, mode=mode, prompt="runs through the window watched")
    wait_for(lambda: entry_states(client) == ["busy", "busy"], 60, "both workers running a job")

    commands = monitor(redis_server.url, IDLE_TICKS * ROUTER_INTERVAL)
    reads = sum(c[:2] == ["get", "dl:summary:torch"] for c in commands)
    # The allocator's router ticks every interval (IDLE_TICKS reads), the other one about 5 times.
    assert reads <= 1.25 * IDLE_TICKS, f"{reads} reads of the summary in {IDLE_TICKS} intervals by 2 busy workers"
