"""A message lost between kombu's pop and its unacked record does not strand its job (tasks/stranded.py).

kombu's Redis transport pops a message (BRPOP), then records it as unacked in a second
round trip.  Here Redis' ACL lets the worker's user pop but refuses that record (ZADD),
as a worker killed between the two steps, or a Redis gone between them, would leave it:
the message is nowhere, and its job waits in its mode's set with no delivery to run it.
The API connects as a user of its own, which may admit jobs all the while.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import redis
from kombu import Connection

from bench.router import write_modes
from jobs.keys import GENERATE_TASK, generation_queue, waiting_key
from jobs.producer import Producer
from jobs.records import JobRecords, Turn
from tasks.celery_app import app
from tasks.stranded import StrandedTurns
from tests.client import poll, submit
from tests.processes import own_stack, wait_for


def test_a_mode_gets_a_message_only_once_its_waiting_job_has_none(redis_server):
    client = redis_server.client()
    records, producer = JobRecords(client, ttl=3600), Producer(app)
    stranded = StrandedTurns(client, records, "affinity", lambda: [("torch", "demo")], producer)
    queue, job_id = generation_queue("torch", "demo"), str(uuid.uuid4())
    payload = {"job_id": job_id, "mode": {"backend": "torch", "name": "demo"}}
    turn, message = (
        Turn(waiting_key("torch", "demo"), 0.0, payload),
        producer.message(GENERATE_TASK, payload, queue, job_id),
    )
    records.create(job_id, "generate", "demo", {}, [], 100, turn, message, counted=True)

    assert stranded.sweep() == [], "its message waits in the queue"
    with Connection(redis_server.url) as connection:
        delivery = connection.SimpleQueue(queue).get(timeout=10)
        assert client.hlen("unacked") == 1
        assert stranded.sweep() == [], "a delivery of its mode is in flight"
        delivery.ack()  # the delivery ended without taking the job's turn: nothing is left to deliver it
    assert stranded.sweep() == [job_id]
    assert client.llen(queue) == 1
    assert stranded.sweep() == [], "the new message waits in the queue"


def test_a_job_whose_message_was_popped_and_never_recorded_runs(tmp_path: Path):
    # LEASE_TTL: the sweep's interval. VISIBILITY_TIMEOUT: kombu's unacked scan cannot restore what it never had.
    overrides = {"ROUTER": "fifo", "WORKER_BACKEND": "timed", "LEASE_TTL": "1", "VISIBILITY_TIMEOUT": "3600"}
    with own_stack(tmp_path / "stack", write_modes(tmp_path, ("demo",)), **overrides) as stack:
        client = redis.Redis.from_url(stack.env["REDIS_URL"])
        password = secrets.token_hex(8)
        client.acl_setuser(
            "api", enabled=True, passwords=[f"+{password}"], keys=["~*"], channels=["*"], commands=["+@all"]
        )
        parts = urlsplit(stack.env["REDIS_URL"])
        base = stack.start_api({"REDIS_URL": f"redis://api:{password}@{parts.hostname}:{parts.port}/0"})
        worker = stack.start_worker()
        records = JobRecords(client, ttl=3600)

        client.acl_setuser("default", enabled=True, commands=["-zadd"])
        try:
            job = submit(base, mode="demo", prompt="x", seed=1)["id"]
            refused = "no permissions to run the 'zadd' command"
            wait_for(
                lambda: refused in worker.log_path.read_text(),
                60,
                "the worker to pop the message and fail to record it",
            )
        finally:
            client.acl_setuser("default", enabled=True, commands=["+zadd"])
        assert client.llen("gen.torch") == client.hlen("unacked") == 0, "the message should be nowhere"
        assert records.get(job)["status"] == "queued"

        stack.start_worker()  # the first one stopped: its consumer gives up on a refused unacked record
        record = poll(base, job, timeout=60)
        assert record["status"] == "succeeded", record
        assert records.get(job)["completions"] == 1
