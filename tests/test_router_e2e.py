"""The mode-affinity router through real Celery workers: affinity, moving to a backlog,
no starvation, and a dead worker's mode served again."""

from __future__ import annotations

import redis
import requests

from jobs.records import JobRecords
from tests.client import poll, submit
from tests.processes import wait_for


def heartbeats(base: str) -> list[dict]:
    return requests.get(f"{base}/api/models/status", timeout=30).json()["workers"]


def serving(base: str, count: int) -> dict[str, str] | None:
    """Worker name -> mode served, once ``count`` workers beat and each serves a mode."""
    beats = heartbeats(base)
    if len(beats) != count or not all(b["serving"] for b in beats):
        return None
    return {b["name"]: b["serving"] for b in beats}


def records_of(stack) -> JobRecords:
    return JobRecords(redis.Redis.from_url(stack.env["REDIS_URL"]), ttl=3600)


def test_each_worker_keeps_the_mode_it_serves(make_stack):
    # A long dwell: the workers keep their first modes for the whole test.
    stack = make_stack(ROUTER_MIN_DWELL="600")
    stack.start_worker()
    stack.start_worker()
    base = stack.start_api()
    first = wait_for(lambda: serving(base, 2), 60, "two workers serving")
    modes = sorted(set(first.values()))
    assert len(modes) == 2, f"idle workers spread over the modes: {first}"

    jobs = [
        submit(base, mode=mode, prompt=f"job {i}", size="64x64", num_inference_steps=4, seed=i)
        for i in range(6)
        for mode in modes
    ]
    assert all(poll(base, job["id"])["status"] == "succeeded" for job in jobs)
    records = [records_of(stack).get(job["id"]) for job in jobs]
    ran_on = {mode: {r["worker"] for r in records if r["mode"] == mode} for mode in modes}
    assert ran_on == {mode: {name for name, m in first.items() if m == mode} for mode in modes}
    assert sum(b["switches"] for b in heartbeats(base)) == 2, "one load per worker, no switching"


def test_an_idle_worker_moves_to_a_mode_nobody_serves(make_stack):
    stack = make_stack()
    stack.start_worker()
    base = stack.start_api()
    first = wait_for(lambda: serving(base, 1), 60, "the worker serving")
    assert list(first.values()) != ["styled"], "it must move: it starts on the first mode by name, not styled"

    jobs = [submit(base, mode="styled", prompt=f"styled {i}", seed=i) for i in range(3)]
    assert all(poll(base, job["id"])["status"] == "succeeded" for job in jobs)
    assert wait_for(lambda: serving(base, 1), 30, "the worker serving")[heartbeats(base)[0]["name"]] == "styled"
    status = requests.get(f"{base}/api/models/status", timeout=30).json()
    assert status["queues"]["styled"]["waiting"] == 0


def test_a_starving_mode_gets_the_worker_before_a_busy_queue_drains(make_stack):
    """The worker's mode has a backlog, another mode starves: the router moves the worker while its job
    runs (that job lasts until the test cancels it), and the starving job runs before the backlog.

    ROUTER_MIN_DWELL=10: once moved, the worker stays on the starving mode for 10 s, time enough to end
    the canceled job and take the next (with the stacks' 0.2 s dwell, two starving modes trade the
    worker every 0.2 s, and which job comes next would depend on timing)."""
    # BATCH_MAX=1: the busy jobs are compatible, and one batch would take them all at once.
    stack = make_stack(ROUTER_STARVATION="1", ROUTER_MIN_DWELL="10", BATCH_MAX="1")
    base = stack.start_api()
    records = records_of(stack)
    blocker = submit(base, mode="slow", prompt="runs until canceled", num_inference_steps=150, size="512x512")
    stack.start_worker()  # its first mode is the only one with work, whatever the dwell
    wait_for(lambda: records.get(blocker["id"])["status"] == "running", 120, "the blocker to run")
    busy = [submit(base, mode="slow", prompt=f"busy {i}", num_inference_steps=2, seed=i) for i in range(4)]
    starving = submit(base, mode="demo", prompt="waits for no one")
    wait_for(lambda: list(serving(base, 1).values()) == ["demo"], 120, "the router to move the worker to demo")
    assert records.get(blocker["id"])["status"] == "running", "moved while its job ran"
    assert requests.delete(f"{base}/api/jobs/{blocker['id']}", timeout=30).status_code == 202

    done = poll(base, starving["id"], timeout=240)
    assert done["status"] == "succeeded"
    assert all(poll(base, job["id"], timeout=240)["status"] == "succeeded" for job in busy)
    # The solo worker changes queues between jobs: one message of the old queue may already be its next.
    before = [job for job in busy if records.get(job["id"])["started_at"] < done["started_at"]]
    assert len(before) <= 1, "the backlog waited, but for the message the worker had already fetched"


def test_a_dead_workers_mode_is_served_again(make_stack):
    stack = make_stack(VISIBILITY_TIMEOUT="4", LEASE_TTL="3")
    workers = [stack.start_worker(), stack.start_worker()]
    base = stack.start_api()
    spread = wait_for(lambda: serving(base, 2), 60, "two workers serving")
    job = submit(base, mode="slow", prompt="survives its worker", num_inference_steps=60, seed=3)
    records = records_of(stack)

    def running_a_while() -> dict | None:
        record = records.get(job["id"])
        return record if record["status"] == "running" and (record["progress"] or {}).get("step", 0) >= 2 else None

    running = wait_for(running_a_while, 60, "the slow job running")
    victim = next(p for p in workers if f"-{p.pid}@" in running["worker"])
    victim.kill()
    victim.wait()

    assert poll(base, job["id"], timeout=180)["status"] == "succeeded"
    assert records.get(job["id"])["worker"] != running["worker"]
    [survivor] = [name for name in spread if name != running["worker"]]
    assert wait_for(lambda: serving(base, 1), 30, "the survivor")[survivor] == "slow"


def test_fifo_runs_one_queue_per_backend_in_arrival_order_loading_each_time_the_mode_changes(make_stack):
    """ROUTER=fifo: every mode's jobs share gen.<backend>; one worker takes them in the order they came,
    loading the next job's mode whenever it differs from the loaded one."""
    stack = make_stack(ROUTER="fifo", BATCH_MAX="1")
    base = stack.start_api()
    order = ["demo", "styled", "styled", "demo", "styled"]
    jobs = [submit(base, mode=mode, prompt=f"job {i}", seed=i) for i, mode in enumerate(order)]
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    assert client.llen("gen.torch") == len(order)
    assert [key for key in client.scan_iter("gen.torch.*")] == [], "no per-mode queue under fifo"

    stack.start_worker()
    assert all(poll(base, job["id"])["status"] == "succeeded" for job in jobs)
    records = records_of(stack)
    started = sorted((records.get(job["id"])["started_at"], i) for i, job in enumerate(jobs))
    assert [i for _, i in started] == list(range(len(order))), "arrival order"
    [beat] = heartbeats(base)
    assert "gen.torch" in beat["queues"] and not [q for q in beat["queues"] if q.startswith("gen.torch.")]
    loads = 1 + sum(a != b for a, b in zip(order, order[1:], strict=False))
    assert loads == 4
    wait_for(lambda: heartbeats(base)[0]["switches"] == loads, 30, f"the heartbeat to count {loads} mode loads")
