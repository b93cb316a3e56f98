"""The one JobRunner of a worker process, built on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

from config import Settings
from jobs.keys import GENERATE_TASK, SWITCH_TASK, mode_queue
from jobs.messages import GenerateJob
from jobs.records import JobRecords
from storage import store_from
from tasks.celery_app import app
from tasks.gate import turn_gate
from tasks.runner import JobRunner
from tasks.turns import ModeJob, Turns
from workers import load_backend

_lock = threading.Lock()
_runner: JobRunner | None = None


def get_runner() -> JobRunner:
    global _runner
    with _lock:
        if _runner is None:
            settings = Settings.from_env()
            client = redis.Redis.from_url(settings.redis_url)
            records = JobRecords(client, settings.job_ttl)
            backend = load_backend(settings.worker_backend)
            batch_max = settings.batch_max if hasattr(backend, "generate_batch") else 1
            _runner = JobRunner(
                client=client,
                records=records,
                store=store_from(settings),
                backend=backend,
                lease_ttl=settings.lease_ttl,
                turns=Turns(client, publisher(settings.router), batch_max, turn_gate()),
            )
        return _runner


def publisher(router: str) -> Callable[[ModeJob], None]:
    """Publish a job's task again on its mode's queue (tasks/turns.py says when)."""

    def republish(job: ModeJob) -> None:
        task = GENERATE_TASK if isinstance(job, GenerateJob) else SWITCH_TASK
        queue = mode_queue(router, job.mode.backend, job.mode.name)
        app.send_task(task, args=[job.to_dict()], queue=queue, task_id=job.job_id)

    return republish
