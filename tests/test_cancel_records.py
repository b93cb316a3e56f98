"""Cancellation in the job records, on a real Redis: what each state does with a cancel."""

from __future__ import annotations

import threading
import uuid

import pytest

from jobs.records import (
    CANCEL_REQUESTED,
    CANCELED_NOW,
    CLAIMED,
    CLAIMED_TO_STOP,
    ENDED,
    GONE,
    STEP_CANCELED,
    JobRecords,
)


@pytest.fixture
def records(redis_server) -> JobRecords:
    return JobRecords(redis_server.client(), ttl=60)


def new_job(records: JobRecords) -> str:
    job_id = str(uuid.uuid4())
    record, _ = records.create(job_id, "generate", "m", {"seed": 1}, ["q"], 10)
    assert record is not None
    return job_id


def test_a_queued_job_ends_canceled_at_once_and_its_delivery_is_dropped(records):
    job_id = new_job(records)
    assert records.cancel(job_id) == CANCELED_NOW
    record = records.get(job_id)
    assert record["status"] == "canceled"
    assert record["finished_at"]
    assert record["error"] == {"message": "canceled on request before it started"}
    assert records.claim(job_id, "A", "w", lease_ttl=30) == ENDED
    assert records.get(job_id)["attempts"] == 0


def test_a_running_job_is_flagged_and_its_worker_hears_it_on_the_next_step(records):
    job_id = new_job(records)
    records.claim(job_id, "A", "w", lease_ttl=30)
    assert records.progress(job_id, "A", 1, 10) != STEP_CANCELED
    assert "cancel_requested" not in records.get(job_id)
    assert records.cancel(job_id) == CANCEL_REQUESTED
    assert records.get(job_id)["status"] == "running"
    assert "cancel_requested" in records.get(job_id)
    assert records.progress(job_id, "A", 2, 10) == STEP_CANCELED
    assert records.progress(job_id, "other-token", 2, 10) != STEP_CANCELED, "only the lease holder hears it"
    assert records.cancel(job_id) == CANCEL_REQUESTED, "asking twice is harmless"
    assert not records.end_canceled(job_id, "other-token", "stopped"), "the end is guarded by the lease"
    assert records.end_canceled(job_id, "A", "canceled on request after step 2 of 10")
    record = records.get(job_id)
    assert (record["status"], record["completions"]) == ("canceled", 1)
    assert record["error"] == {"message": "canceled on request after step 2 of 10"}


def test_a_running_job_no_worker_holds_ends_at_once(records, redis_server):
    """Between generation and its SR stage (or after its worker died) the lease is gone: nobody would stop it."""
    job_id = new_job(records)
    records.claim(job_id, "A", "w", lease_ttl=30)
    redis_server.client().delete(f"dl:lease:{job_id}")
    assert records.cancel(job_id) == CANCELED_NOW
    assert records.get(job_id)["error"] == {"message": "canceled on request while no worker held it"}
    assert records.claim(job_id, "B", "w", lease_ttl=30) == ENDED


def test_ended_and_unknown_jobs(records):
    job_id = new_job(records)
    records.claim(job_id, "A", "w", lease_ttl=30)
    records.succeed(job_id, "A", {"key": "k"})
    assert records.cancel(job_id) == ENDED
    assert records.get(job_id)["status"] == "succeeded"
    assert records.cancel(str(uuid.uuid4())) == GONE


def test_a_waiter_wakes_when_a_queued_job_is_canceled(records):
    job_id = new_job(records)
    canceler = threading.Timer(0.5, records.cancel, args=(job_id,))
    canceler.start()
    record = records.wait(job_id, timeout=60)
    canceler.join()
    assert record["status"] == "canceled"


def test_a_claim_after_a_cancel_request_says_to_stop(records, redis_server):
    """The holder was asked to stop and died: whoever claims the job next hears of the cancel in its claim."""
    job_id = new_job(records)
    assert records.claim(job_id, "A", "w", lease_ttl=30) == CLAIMED
    assert records.cancel(job_id) == CANCEL_REQUESTED
    redis_server.client().delete(f"dl:lease:{job_id}")  # A died; its lease expired
    assert records.claim(job_id, "B", "w2", lease_ttl=30) == CLAIMED_TO_STOP
    assert records.end_canceled(job_id, "B", "canceled on request before this worker started it")
    assert records.get(job_id)["status"] == "canceled"
