"""The worker side of cancellation, in process on a real Redis, store and SR engine."""

from __future__ import annotations

import uuid

import pytest

from config import SuperResSettings
from jobs.records import CANCEL_REQUESTED, CLAIMED, JobRecords
from jobs.superres import SuperResJob, SuperResOptions, generated_key, output_key
from storage.local import LocalStore
from tasks.cancel import PROGRESS_EVERY, JobCanceled, step_reporter
from tasks.superres_context import engine_config
from tasks.superres_runner import SuperResRunner
from tests.sr_helpers import encoded, picture
from workers.superres.engine import load_engine


@pytest.fixture
def records(redis_server) -> JobRecords:
    return JobRecords(redis_server.client(), ttl=60)


def running_job(records: JobRecords, token: str) -> str:
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "m", {}, ["q"], 10)
    assert records.claim(job_id, token, "generation-worker", lease_ttl=30) == CLAIMED
    return job_id


def test_the_step_callback_raises_once_a_cancel_is_requested(records):
    job_id = running_job(records, "A")
    ticks = iter(range(100))  # passes PROGRESS_EVERY apart: each is written (tests/test_progress_throttle.py: faster)
    on_pass = step_reporter(records, job_id, "A", unit="pass", clock=lambda: next(ticks) * PROGRESS_EVERY)
    on_pass(1, 3)
    assert records.cancel(job_id) == CANCEL_REQUESTED
    with pytest.raises(JobCanceled, match="^canceled on request after pass 2 of 3$"):
        on_pass(2, 3)


def test_a_cancel_that_came_before_the_sr_hand_off_ends_the_job_on_the_sr_worker(records, redis_server, tmp_path):
    """The generation worker held the job when the cancel came, then handed it on: the SR worker must not run it."""
    job_id = running_job(records, "A")
    assert records.cancel(job_id) == CANCEL_REQUESTED
    redis_server.client().delete(f"dl:lease:{job_id}")  # what the hand-off does: give the lease up
    store = LocalStore(tmp_path / "store")
    store.put(generated_key(job_id), encoded(picture(20, 20)), "image/png")
    settings = SuperResSettings.from_env()
    runner = SuperResRunner(
        redis_server.client(), records, store, load_engine(engine_config(settings)), settings, lease_ttl=30
    )
    job = SuperResJob(job_id, generated_key(job_id), SuperResOptions(1, "png", 95), base_result={"seed": 1})

    assert runner.run(job, "sr-worker", None) == "canceled"
    record = records.get(job_id)
    assert record["status"] == "canceled"
    assert record["error"] == {"message": "canceled on request before this worker started it"}
    assert not store.exists(generated_key(job_id))
    assert not store.exists(output_key(job_id, "png"))
