"""A delivery that Redis fails between counting its turn and claiming keeps its turn (tasks/turns.py).

Job X's delivery is held between reading its turn (which counts the delivery) and its
claim (tasks/gate.py) while Redis' ACL denies the worker's user the scripts the claim
runs, and not the commands of an ack.  That is the order a Redis restart can give (the
claim meets Redis gone, the ack finds it back), made repeatable.  Before, the task raised,
Celery acked its message, and X stayed queued with no message left anywhere: the
bounded soak's lost job (``deliveries`` 1, ``attempts`` 0).  A custom job's delivery,
whose claim Redis refuses the same way, stayed queued forever.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

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


def test_a_custom_job_whose_claim_redis_refuses_runs_once_redis_answers(tmp_path: Path):
    overrides = {
        "WORKER_BACKEND": "timed",
        "VISIBILITY_TIMEOUT": "3600",
        "CUSTOM_HANDLER_MODULES": "tests.handlers.sample",
    }
    with own_stack(tmp_path / "stack", write_modes(tmp_path, ("demo",)), **overrides) as stack:
        client = redis.Redis.from_url(stack.env["REDIS_URL"])
        # The API admits as a user of its own: only the worker's user is refused the claim's scripts.
        password, parts = secrets.token_hex(8), urlsplit(stack.env["REDIS_URL"])
        everything = {"keys": ["~*"], "channels": ["*"], "commands": ["+@all"]}
        client.acl_setuser("api", enabled=True, passwords=[f"+{password}"], **everything)
        base = stack.start_api({"REDIS_URL": f"redis://api:{password}@{parts.hostname}:{parts.port}/0"})
        worker = stack.start_worker()

        client.acl_setuser("default", enabled=True, commands=["-evalsha", "-eval"])
        try:
            response = requests.post(
                f"{base}/api/custom", json={"handler": "add", "args": {"numbers": [1, 2]}}, timeout=60
            )
            assert response.status_code == 202, response.text
            job = response.json()["id"]
            ended = (f"job {job}: Redis failed this delivery", f"Task dreamlab.custom[{job}] raised unexpected")
            wait_for(
                lambda: any(line in worker.log_path.read_text() for line in ended), 60, "Redis to refuse the claim"
            )
        finally:
            client.acl_setuser("default", enabled=True, commands=["+evalsha", "+eval"])

        record = poll(base, job, timeout=60)
        assert record["status"] == "succeeded" and record["result"]["output"] == {"sum": 3}, record
