"""Admission against QUEUE_MAX with a count of queued jobs: one read whatever the number of modes, on a real Redis."""

from __future__ import annotations

import uuid

import pytest

from jobs.keys import QUEUED_COUNT, generation_queue, waiting_key
from jobs.records import CLAIMED, JobRecords, QueuedMessage, Turn


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def admit(records: JobRecords, mode: str, queue_max: int = 2) -> tuple[str, int]:
    job_id = str(uuid.uuid4())
    turn = Turn(waiting_key("torch", mode), 0.0, {})
    message = QueuedMessage(generation_queue("torch", mode), "{}")
    record, depth = records.create(job_id, "generate", mode, {}, [], queue_max, turn, message, counted=True)
    return (job_id if record else ""), depth


def test_jobs_of_every_mode_count_until_claimed_or_canceled(client):
    records = JobRecords(client, ttl=60)
    first, _ = admit(records, "a")
    second, _ = admit(records, "b")
    assert admit(records, "c") == ("", 2), "a third job while two of any mode wait"

    assert records.claim(first, "token", "w", 30, waiting_key("torch", "a")) == CLAIMED
    third, _ = admit(records, "c")
    assert third and admit(records, "d") == ("", 2)

    assert records.cancel(second, waiting_key("torch", "b")) > 0
    assert records.cancel(second, waiting_key("torch", "b")) == 0, "a second cancel ends nothing"
    assert admit(records, "d")[0]
    assert int(client.get(QUEUED_COUNT)) == 2


def test_a_job_leaves_the_count_once_however_often_it_is_claimed(client):
    records = JobRecords(client, ttl=60)
    job_id, _ = admit(records, "a")
    assert records.claim(job_id, "token", "w", 0.05) == CLAIMED
    client.delete(f"dl:lease:{job_id}")  # its worker died: the lease lapsed
    assert records.claim(job_id, "again", "w2", 30) == CLAIMED
    records.cancel(job_id)  # running: flagged, not counted again
    assert int(client.get(QUEUED_COUNT)) == 0


def test_uncounted_jobs_count_their_queues(client):
    """The super-resolution queue keeps its own limit: its list's length."""
    records = JobRecords(client, ttl=60)
    for expected in (-1, -1, 2):
        _, depth = records.create(
            str(uuid.uuid4()), "superres", "superres", {}, ["sr"], 2, message=QueuedMessage("sr", "{}")
        )
        assert depth == expected
    assert client.get(QUEUED_COUNT) is None
