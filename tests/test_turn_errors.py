"""A delivery that Redis fails between counting its turn and claiming keeps its turn (tasks/turns.py).

Job X's delivery is held between reading its turn (which counts the delivery) and its
claim (tasks/gate.py) while Redis' ACL denies the worker's user the scripts the claim
runs, and not the commands of an ack.  That is the order a Redis restart can give (the
claim meets Redis gone, the ack finds it back), made repeatable.  Before, the task raised,
Celery acked its message, and X stayed queued with no message left anywhere: the
bounded soak's lost job (``deliveries`` 1, ``attempts`` 0).
"""

from __future__ import annotations

from pathlib import Path

import redis

from bench.router import write_modes
from jobs.records import JobRecords
from tests.client import poll, submit
from tests.processes import own_stack, wait_for


def test_a_delivery_whose_claim_redis_refuses_runs_its_job_once_redis_answers(tmp_path: Path):
    gate = tmp_path / "gate"
    gate.mkdir()
    # VISIBILITY_TIMEOUT: no redelivery by kombu's unacked scan hides a message acked by mistake.
    overrides = {"ROUTER": "fifo", "BATCH_MAX": "1", "WORKER_BACKEND": "timed", "VISIBILITY_TIMEOUT": "3600"}
    with own_stack(tmp_path / "stack", write_modes(tmp_path, ("demo",)), **overrides) as stack:
        worker = stack.start_worker({"TURN_GATE_DIR": str(gate)})
        base = stack.start_api()
        client = redis.Redis.from_url(stack.env["REDIS_URL"])
        records = JobRecords(client, ttl=3600)

        job = submit(base, mode="demo", prompt="x", seed=1)["id"]
        wait_for(lambda: (gate / f"{job}.looked").exists(), 60, "the delivery to count its turn and stop at the gate")
        assert records.get(job)["deliveries"] == 1
        client.acl_setuser("default", enabled=True, reset_keys=False, commands=["-evalsha", "-eval"])
        try:
            (gate / f"{job}.open").touch()
            refused = "no permissions to run the 'evalsha' command"
            wait_for(lambda: refused in worker.log_path.read_text(), 60, "Redis to refuse the claim")
        finally:
            client.acl_setuser("default", enabled=True, commands=["+evalsha", "+eval"])

        record = poll(base, job, timeout=60)
        assert record["status"] == "succeeded", record
        assert (records.get(job)["attempts"], records.get(job)["completions"]) == (1, 1)
