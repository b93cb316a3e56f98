"""Progress writes are throttled (a fleet's Redis pays for each) while a cancel is still heard soon, on a real Redis."""

from __future__ import annotations

import uuid

import pytest

from jobs.records import CLAIMED, JobRecords
from tasks.cancel import PROGRESS_EVERY, JobCanceled, step_reporter
from tests.processes import start_redis


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_server):
    return redis_server.client()


def running_job(records: JobRecords) -> str:
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "m", {}, [], 10)
    assert records.claim(job_id, "token", "w", lease_ttl=30) == CLAIMED
    return job_id


def progress_writes(client, job_id: str, steps: int, every: float, clock: Clock, report) -> list[int]:
    """The step each progress write recorded, read back from Redis after each step."""
    seen = []
    for step in range(1, steps + 1):
        clock.now += every
        report(step, steps)
        recorded = JobRecords(client, ttl=60).get(job_id)["progress"]
        if recorded and (not seen or seen[-1] != recorded["step"]):
            seen.append(recorded["step"])
    return seen


def test_fast_steps_are_written_once_per_interval_and_the_last_always(client):
    records = JobRecords(client, ttl=60)
    job_id = running_job(records)
    clock = Clock()
    report = step_reporter(records, job_id, "token", clock=clock)
    written = progress_writes(client, job_id, 25, PROGRESS_EVERY * 0.4, clock, report)
    assert written == [1, 4, 7, 10, 13, 16, 19, 22, 25]


def test_slow_steps_are_all_written(client):
    records = JobRecords(client, ttl=60)
    job_id = running_job(records)
    clock = Clock()
    report = step_reporter(records, job_id, "token", clock=clock)
    assert progress_writes(client, job_id, 5, PROGRESS_EVERY, clock, report) == [1, 2, 3, 4, 5]


def test_a_cancel_is_heard_within_the_interval_between_writes(client):
    records = JobRecords(client, ttl=60)
    job_id = running_job(records)
    clock = Clock()
    report = step_reporter(records, job_id, "token", clock=clock)
    every = PROGRESS_EVERY * 0.4
    clock.now += every
    report(1, 25)  # written
    assert records.cancel(job_id) > 0
    clock.now += every
    report(2, 25)  # within the interval: not written, the cancel not yet heard
    clock.now += every
    report(3, 25)
    with pytest.raises(JobCanceled, match="after step 4 of 25"):
        clock.now += every
        report(4, 25)  # PROGRESS_EVERY after the last write: written, and the cancel heard


def test_a_progress_write_without_redis_is_skipped_and_the_next_one_made(tmp_path):
    """Redis down for a step (a restart, its data kept): the job goes on, and the step after it is written."""
    server = start_redis(tmp_path / "redis", aof=True)
    try:
        records = JobRecords(server.client(), ttl=60)
        job_id = running_job(records)
        clock = Clock()
        report = step_reporter(records, job_id, "token", clock=clock)
        report(1, 3)
        server.stop()
        clock.now += PROGRESS_EVERY
        report(2, 3)  # raised ConnectionError before, and the worker failed the job
        server.start()
        clock.now += PROGRESS_EVERY * 0.1
        report(3, 3)
        assert records.get(job_id)["progress"] == {"step": 3, "total": 3}
    finally:
        server.stop()
