"""A job left running with no lease and no message is run again (tasks/orphans.py).

Its worker took the message and claimed the job, then was gone: killed while it ran
another delivery's job, or cut off by a Redis restart that outlived its lease, with
its message acked.  Nothing is left to deliver the job; a live worker's sweeper
must find it without waiting for any worker to restart.
"""

from __future__ import annotations

import uuid

import redis

from jobs.keys import generation_queue, waiting_key
from jobs.records import CLAIMED, JobRecords
from tests.client import poll, submit
from tests.processes import wait_for


def test_a_running_job_whose_lease_and_message_are_gone_runs_again(make_stack):
    stack = make_stack(LEASE_TTL="2")
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    records = JobRecords(client, ttl=3600)
    job_id = submit(base, mode="demo", prompt="orphan", seed=4)["id"]

    # What a worker that then vanished did: take the message off the queue, claim the job.
    assert client.brpop([generation_queue("torch", "demo")], timeout=10)
    claim = records.claim(job_id, uuid.uuid4().hex, "vanished@host", 1.0, waiting_key("torch", "demo"), "generate")
    assert claim == CLAIMED
    wait_for(lambda: records.get(job_id)["status"] == "running", 10, "the job to be marked running")

    worker = stack.start_worker()
    record = poll(base, job_id, timeout=120)
    assert record["status"] == "succeeded", record
    stored = records.get(job_id)
    assert stored["attempts"] == 2 and stored["completions"] == 1
    assert stored["worker"].startswith(f"torch-{worker.pid}@")
    assert f"job {job_id}: was running with no lease" in worker.log_path.read_text()
