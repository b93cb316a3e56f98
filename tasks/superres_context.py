"""The one SuperResRunner of an SR worker process, built on first use (after the pool forks)."""

from __future__ import annotations

import threading

import redis

from config import Settings, SuperResSettings
from jobs.records import JobRecords
from storage import store_from
from tasks.superres_runner import SuperResRunner
from workers.superres.engine import EngineConfig, default_threads, load_engine

_lock = threading.Lock()
_runner: SuperResRunner | None = None


def engine_config(sr: SuperResSettings) -> EngineConfig:
    return EngineConfig(
        engine=sr.engine,
        model_path=sr.model_path,
        input_size=sr.input_size,
        output_size=sr.output_size,
        threads=default_threads(sr.num_workers),
    )


def get_superres_runner() -> SuperResRunner:
    global _runner
    with _lock:
        if _runner is None:
            settings, sr = Settings.from_env(), SuperResSettings.from_env()
            client = redis.Redis.from_url(settings.redis_url)
            _runner = SuperResRunner(
                client=client,
                records=JobRecords(client, settings.job_ttl),
                store=store_from(settings),
                engine=load_engine(engine_config(sr)),
                settings=sr,
                lease_ttl=settings.lease_ttl,
            )
        return _runner
