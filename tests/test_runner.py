"""The runner in process on a real Redis and store: what a worker running several jobs at once
(the threads pool of an rknn worker) reports to its heartbeat and router."""

from __future__ import annotations

import threading
import uuid

from jobs.keys import CUSTOM_QUEUE
from jobs.messages import CustomJob
from jobs.records import JobRecords
from storage.local import LocalStore
from tasks.runner import JobRunner
from tasks.turns import Turns
from workers.custom_handlers import handler
from workers.noop import NoopBackend

RELEASE = threading.Event()
STARTED = threading.Semaphore(0)


@handler("test-hold-until-released")
def hold(args: dict, context: object) -> dict:
    STARTED.release()
    RELEASE.wait(30)
    return {}


def test_jobs_running_at_once_are_all_reported_until_each_ends(redis_server, tmp_path):
    client = redis_server.client()
    records = JobRecords(client, ttl=60)
    runner = JobRunner(client, records, LocalStore(tmp_path), NoopBackend(), 30, Turns(client, lambda job: None, 1))
    jobs = [CustomJob(str(uuid.uuid4()), "test-hold-until-released", {}) for _ in range(2)]
    for job in jobs:
        records.create(job.job_id, "custom", "", {}, [CUSTOM_QUEUE], 10)
    threads = [threading.Thread(target=runner.custom, args=(job, "w", None)) for job in jobs]
    assert runner.current_job is None
    for thread in threads:
        thread.start()
    for _ in jobs:
        assert STARTED.acquire(timeout=30)
    assert sorted(runner.current_job.split(", ")) == sorted(job.job_id for job in jobs)
    RELEASE.set()
    for thread in threads:
        thread.join(30)
    assert runner.current_job is None
    assert [records.get(job.job_id)["status"] for job in jobs] == ["succeeded", "succeeded"]
