"""What the API's views share: settings, Redis, job records, the store, modes and the producer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from flask import current_app

from api.errors import ApiError
from config import Settings
from jobs.keys import GENERATE_TASK, generation_queue
from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from jobs.records import JobRecords
from jobs.superres import SuperResOptions
from modes import Mode, ModesConfig
from storage import ObjectStore


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    records: JobRecords
    store: ObjectStore
    modes: ModesConfig
    producer: Celery

    def queues(self) -> dict[str, str]:
        """Mode name -> its generation queue."""
        return {m.name: generation_queue(m.backend, m.name) for m in self.modes.modes.values()}

    def queue_depths(self) -> dict[str, int]:
        queues = self.queues()
        pipe = self.redis.pipeline()
        for queue in queues.values():
            pipe.llen(queue)
        return dict(zip(queues, pipe.execute(), strict=True))

    def submit_generation(
        self, mode: Mode, params: GenerateParams, superres: SuperResOptions | None = None
    ) -> dict[str, Any]:
        """Record and enqueue a job, or raise ApiError having enqueued nothing."""
        job = GenerateJob(
            job_id=str(uuid.uuid4()),
            mode=ResolvedMode(
                name=mode.name, model_path=str(mode.model_path), scheduler=mode.scheduler, backend=mode.backend
            ),
            params=params,
            superres=superres,
        )
        record_params = job.to_dict()["params"]
        if superres:
            record_params["superres"] = job.to_dict()["superres"]
        record, waiting = self.records.create(
            job.job_id,
            "generate",
            mode.name,
            record_params,
            list(self.queues().values()),
            self.settings.queue_max,
        )
        if record is None:
            raise ApiError(
                429,
                f"{waiting} jobs are waiting (QUEUE_MAX={self.settings.queue_max}); retry later",
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        try:
            self.producer.send_task(
                GENERATE_TASK, args=[job.to_dict()], queue=generation_queue(mode.backend, mode.name), task_id=job.job_id
            )
        except Exception as exc:
            self.records.delete(job.job_id)
            raise ApiError(503, f"could not enqueue the job ({exc}); check that Redis at REDIS_URL is up") from exc
        current_app.logger.info("job %s: queued for mode %s", job.job_id, mode.name)
        return record


def services() -> Services:
    return current_app.extensions["dreamlab"]
