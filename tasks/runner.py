"""Run one generation job on a worker: lease, progress, store, record."""

from __future__ import annotations

import logging
import time

import redis

from jobs.keys import result_object_key
from jobs.messages import GenerateJob
from jobs.records import CLAIMED, GONE, JobRecords
from jobs.superres import generated_key
from storage import ObjectStore
from tasks.lease import Lease
from tasks.superres_handoff import hand_off
from workers import Backend
from workers.png import a1111_parameters, encode_png

log = logging.getLogger(__name__)


class JobRunner:
    """Everything a worker process needs to run jobs, built once per process."""

    def __init__(
        self,
        client: redis.Redis,
        records: JobRecords,
        store: ObjectStore,
        backend: Backend,
        lease_ttl: float,
    ) -> None:
        self.redis = client
        self.records = records
        self.store = store
        self.backend = backend
        self.lease_ttl = lease_ttl
        self.current_job: str | None = None

    def run(self, job: GenerateJob, worker: str, delivery_tag: str | None) -> str:
        """Run ``job`` unless another delivery of it has run or is running; return what happened."""
        job_id = job.job_id
        lease = Lease(self.redis, job_id, self.lease_ttl, delivery_tag)
        code = lease.acquire(lambda token: self.records.claim(job_id, token, worker, self.lease_ttl))
        if code != CLAIMED:
            why = "its record expired" if code == GONE else "it already ended"
            log.info("job %s: %s; dropping this delivery", job_id, why)
            return "dropped"
        with lease:
            log.info("job %s: running mode %s on %s", job_id, job.mode.name, worker)
            self.current_job = job_id
            try:
                return self._generate(job, lease)
            finally:
                self.current_job = None

    def _generate(self, job: GenerateJob, lease: Lease) -> str:
        job_id = job.job_id
        began = time.perf_counter()
        try:
            generated = self.backend.generate(
                job, on_step=lambda step, total: self.records.progress(job_id, lease.token, step, total)
            )
            png = encode_png(generated.image, a1111_parameters(job, generated.sampler))
            key = generated_key(job_id) if job.superres else result_object_key(job_id)
            self.store.put(key, png, "image/png")
        except Exception as exc:
            log.exception("job %s: generation failed", job_id)
            message = (
                f"generation failed on worker with mode {job.mode.name!r}: {type(exc).__name__}: {exc}. "
                "Check that the mode's model files exist and are complete, then submit the job again."
            )
            self.records.fail(job_id, lease.token, message)
            return "failed"
        result = {
            "key": key,
            "seed": job.params.seed,
            "mode": job.mode.name,
            "width": generated.image.width,
            "height": generated.image.height,
            "sampler": generated.sampler,
            "run_seconds": round(time.perf_counter() - began, 4),
        }
        if job.superres:
            return hand_off(job, lease, result)
        if self.records.succeed(job_id, lease.token, result):
            log.info("job %s: succeeded in %.2fs", job_id, result["run_seconds"])
            return "succeeded"
        log.warning("job %s: finished but lost its lease; another worker owns the result", job_id)
        return "superseded"
