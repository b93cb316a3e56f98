"""Two workers race on one mode's turns: no job is stranded (tasks/turns.py, the invariant).

Job A's delivery is held between reading its turn and claiming (tasks/gate.py) while
job B's delivery, on another worker, runs A as the first job of the mode.  A's
delivery then finds its job taken, and must move on to B: before, it dropped, and B
waited forever with no message left.
"""

from __future__ import annotations

import redis

from jobs.records import JobRecords
from tests.client import poll, submit
from tests.processes import wait_for


def test_a_delivery_whose_job_another_took_runs_the_next_waiting_job(make_stack, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    # fifo: both workers take the one queue of the backend; BATCH_MAX=1: B's turn runs A alone.
    # VISIBILITY_TIMEOUT: the held delivery keeps its message however long the test holds it.
    stack = make_stack(ROUTER="fifo", BATCH_MAX="1", VISIBILITY_TIMEOUT="3600")
    held = stack.start_worker({"TURN_GATE_DIR": str(gate)})
    base = stack.start_api()
    records = JobRecords(redis.Redis.from_url(stack.env["REDIS_URL"]), ttl=3600)

    a = submit(base, mode="demo", prompt="a", seed=1)["id"]
    wait_for(lambda: (gate / f"{a}.looked").exists(), 60, "A's delivery to read its turn and stop at the gate")
    other = stack.start_worker()
    b = submit(base, mode="demo", prompt="b", seed=2)["id"]
    ran_a = wait_for(lambda: records.get(a)["status"] == "succeeded" and records.get(a), 120, "B's turn to run A")
    assert ran_a["worker"].startswith(f"torch-{other.pid}@"), ran_a["worker"]

    (gate / f"{a}.open").touch()
    record = poll(base, b, timeout=120)
    assert record["status"] == "succeeded", record
    assert records.get(b)["worker"].startswith(f"torch-{held.pid}@")
    assert records.get(a)["completions"] == records.get(b)["completions"] == 1
    assert "this delivery runs job" in held.log_path.read_text()
