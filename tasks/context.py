"""The one JobRunner of a worker process, built on first use."""

from __future__ import annotations

import threading

import redis

from config import Settings
from jobs.records import JobRecords
from storage import open_store
from tasks.runner import JobRunner
from workers import load_backend

_lock = threading.Lock()
_runner: JobRunner | None = None


def get_runner() -> JobRunner:
    global _runner
    with _lock:
        if _runner is None:
            settings = Settings.from_env()
            client = redis.Redis.from_url(settings.redis_url)
            _runner = JobRunner(
                client=client,
                records=JobRecords(client, settings.job_ttl),
                store=open_store(settings.store_url, settings.s3_endpoint_url, settings.s3_region),
                backend=load_backend(settings.worker_backend),
                lease_ttl=settings.lease_ttl,
            )
        return _runner
