"""The runner in process on a real Redis and store: what a worker running several jobs at once
(the threads pool of an rknn worker), or waiting on another worker's lease, reports to its
heartbeat and router."""

from __future__ import annotations

import threading
import uuid

from jobs.keys import CUSTOM_QUEUE, generation_queue, waiting_key
from jobs.messages import CustomJob, GenerateJob, GenerateParams, ResolvedMode
from jobs.records import CLAIMED, JobRecords, Turn
from storage.local import LocalStore
from tasks.runner import GENERATE, JobRunner
from tasks.turns import Turns
from tests.processes import wait_for
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


def test_a_delivery_waiting_on_another_workers_lease_keeps_its_worker_occupied(redis_server, tmp_path):
    """The router reads ``occupied`` as busy: a worker whose only thread waits for another worker's job
    to end or die (a duplicate delivery) must not be taken for idle and moved while it cannot serve."""
    client = redis_server.client()
    records = JobRecords(client, ttl=60)
    runner = JobRunner(client, records, LocalStore(tmp_path), NoopBackend(), 3, Turns(client, lambda job: None, 1))
    mode = ResolvedMode(name="demo", model_path="unused", scheduler="default", backend="torch")
    job = GenerateJob(str(uuid.uuid4()), mode, GenerateParams("p", "", 64, 64, 1, 1.0, 1))
    waiting = waiting_key("torch", "demo")
    turn = Turn(waiting, 0.0, job.to_dict())
    records.create(job.job_id, "generate", "demo", {}, [generation_queue("torch", "demo")], 10, turn)
    assert records.claim(job.job_id, "holder", "other-worker", 60, waiting, GENERATE) == CLAIMED

    outcome: list[str] = []
    # A daemon: should an assertion below fail, the delivery still waiting must not keep pytest from exiting.
    delivery = threading.Thread(target=lambda: outcome.append(runner.turn(job, "w", None)), daemon=True)
    delivery.start()
    # The record has no ``deliveries`` field until the delivery's first look counts it.
    wait_for(lambda: records.get(job.job_id).get("deliveries") == 1, 30, "the delivery to read its turn")
    assert runner.occupied and runner.current_job is None  # waiting, not running it
    assert records.succeed(job.job_id, "holder", {"images": []})
    delivery.join(30)
    assert outcome == ["dropped"] and not runner.occupied
