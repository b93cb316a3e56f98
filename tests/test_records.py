"""Job records on a real Redis: admission, claims, guarded completion, waiting."""

from __future__ import annotations

import threading
import uuid

import pytest

from jobs.records import CLAIMED, ENDED, GONE, HELD, JobRecords, QueuedMessage
from tests.processes import wait_for


@pytest.fixture
def records(redis_server) -> JobRecords:
    return JobRecords(redis_server.client(), ttl=60)


def new_job(records: JobRecords, queue_max: int = 10) -> str:
    job_id = str(uuid.uuid4())
    record, waiting = records.create(job_id, "generate", "m", {"seed": 1}, ["q"], queue_max)
    assert record is not None and waiting == -1
    return job_id


def test_admission_refuses_when_queues_are_full(records, redis_server):
    redis_server.client().rpush("q", "a", "b")
    record, waiting = records.create(str(uuid.uuid4()), "generate", "m", {}, ["q", "other"], 2)
    assert record is None and waiting == 2
    assert not list(redis_server.client().scan_iter("dl:job:*"))


def test_claim_is_exclusive_and_completion_needs_the_lease(records):
    job_id = new_job(records)
    assert records.claim(job_id, "A", "worker-a", lease_ttl=30) == CLAIMED
    assert records.claim(job_id, "B", "worker-b", lease_ttl=30) == HELD
    assert not records.succeed(job_id, "B", {"key": "x"}), "a worker without the lease cannot complete"
    assert records.succeed(job_id, "A", {"key": "x"})
    assert not records.succeed(job_id, "A", {"key": "y"}), "completion happens once"
    record = records.get(job_id)
    assert (record["status"], record["attempts"], record["completions"]) == ("succeeded", 1, 1)
    assert record["result"] == {"key": "x"}


def test_claim_after_the_end_or_expiry(records, redis_server):
    job_id = new_job(records)
    records.claim(job_id, "A", "w", lease_ttl=30)
    records.fail(job_id, "A", "boom")
    redis_server.client().delete(f"dl:lease:{job_id}")
    assert records.claim(job_id, "B", "w", lease_ttl=30) == ENDED
    redis_server.client().delete(f"dl:job:{job_id}")  # the record expired
    assert records.claim(job_id, "B", "w", lease_ttl=30) == GONE


def test_expired_lease_lets_another_worker_take_over(records, redis_server):
    job_id = new_job(records)
    assert records.claim(job_id, "A", "worker-a", lease_ttl=0.2) == CLAIMED
    wait_for(lambda: not redis_server.client().exists(f"dl:lease:{job_id}"), 30, "the lease to expire")
    assert records.claim(job_id, "B", "worker-b", lease_ttl=30) == CLAIMED
    assert records.get(job_id)["attempts"] == 2
    assert not records.succeed(job_id, "A", {"key": "late"})


def test_wait_outlasts_the_redis_socket_timeout(records):
    """redis-py's default socket timeout is 5 s; /generate waits far longer than that."""
    job_id = new_job(records)
    records.claim(job_id, "A", "w", lease_ttl=30)
    finisher = threading.Timer(6.0, records.succeed, args=(job_id, "A", {"key": "k"}))
    finisher.start()
    record = records.wait(job_id, timeout=30)
    finisher.join()
    assert record["status"] == "succeeded"


def test_wait_gives_up_at_its_timeout(records):
    job_id = new_job(records)
    assert records.wait(job_id, timeout=0.5)["status"] == "queued"


def test_a_job_handed_to_its_next_stage_is_not_run_again_by_its_first(redis_server):
    records = JobRecords(redis_server.client(), ttl=60)
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "m", {}, ["q"], 10)
    assert records.claim(job_id, "A", "w", lease_ttl=30, stage="generate") == CLAIMED
    stage_message = QueuedMessage("superres", "the SR stage's message")
    assert not records.hand_off(job_id, "not-the-holder", "superres", stage_message)
    assert records.hand_off(job_id, "A", "superres", stage_message)
    client = redis_server.client()
    assert client.lrange("superres", 0, -1) == [b"the SR stage's message"]
    assert not client.exists(f"dl:lease:{job_id}"), "the hand-off gave the lease up"
    assert records.claim(job_id, "B", "w", lease_ttl=30, stage="generate") == ENDED
    assert records.claim(job_id, "C", "sr", lease_ttl=30) == CLAIMED
