"""Run one job on a worker: lease, work, store, record."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from PIL import Image

from jobs.keys import result_object_key, waiting_key
from jobs.messages import CustomJob, GenerateJob, SwitchJob
from jobs.records import CLAIMED, GONE, JobRecords
from jobs.superres import generated_key
from storage import ObjectStore
from tasks.cancel import JobCanceled, check_canceled, end_canceled, step_reporter
from tasks.lease import Lease
from tasks.superres_handoff import hand_off
from workers import Backend
from workers.custom_handlers import HANDLERS, HandlerContext
from workers.errors import JobError
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
        self.switches = 0  # how often a job found another mode loaded: the router's cost
        self.on_switch_job: Callable[[str], None] | None = None  # told the mode a switch job loaded

    def generate(self, job: GenerateJob, worker: str, delivery_tag: str | None) -> str:
        def work(lease: Lease) -> dict[str, Any] | None:
            began = time.perf_counter()
            result = self._generate(job, lease)
            if not job.superres:
                return result
            result["run_seconds"] = round(time.perf_counter() - began, 4)
            hand_off(job, lease, result)  # the SR worker completes the job
            return None

        waiting = waiting_key(job.mode.backend, job.mode.name)
        return self._run(job.job_id, f"mode {job.mode.name!r}", worker, delivery_tag, work, waiting)

    def switch(self, job: SwitchJob, worker: str, delivery_tag: str | None) -> str:
        def load(lease: Lease) -> dict[str, Any]:
            seconds = self.backend.prepare(job.mode, job.job_id)
            if self.on_switch_job:
                self.on_switch_job(job.mode.name)
            return {"mode": job.mode.name, "worker": worker, "load_seconds": round(seconds, 4)}

        waiting = waiting_key(job.mode.backend, job.mode.name)
        return self._run(job.job_id, f"switch to mode {job.mode.name!r}", worker, delivery_tag, load, waiting)

    def custom(self, job: CustomJob, worker: str, delivery_tag: str | None) -> str:
        def call(lease: Lease) -> dict[str, Any]:
            if job.handler not in HANDLERS:
                raise JobError(f"this worker has no custom handler {job.handler!r}; it has {sorted(HANDLERS)}")
            output = HANDLERS[job.handler](job.args, HandlerContext(job.job_id, self.backend))
            return {"handler": job.handler, "worker": worker, "output": output}

        return self._run(job.job_id, f"custom handler {job.handler!r}", worker, delivery_tag, call)

    def _run(
        self,
        job_id: str,
        what: str,
        worker: str,
        delivery_tag: str | None,
        work: Callable[[Lease], dict[str, Any] | None],
        waiting: str | None = None,
    ) -> str:
        """Run ``work`` unless another delivery of the job has run or is running; return what happened.

        ``work`` returns the job's result, or None when it handed the job on to another stage.
        ``waiting`` is the mode's waiting set, which the job leaves when claimed.
        """
        lease = Lease(self.redis, job_id, self.lease_ttl, delivery_tag)
        code = lease.acquire(lambda token: self.records.claim(job_id, token, worker, self.lease_ttl, waiting))
        if code != CLAIMED:
            why = "its record expired" if code == GONE else "it already ended"
            log.info("job %s: %s; dropping this delivery", job_id, why)
            return "dropped"
        with lease:
            log.info("job %s: running %s on %s", job_id, what, worker)
            self.current_job = job_id
            loaded = self.backend.loaded_mode
            began = time.perf_counter()
            try:
                check_canceled(self.records, job_id)
                result = work(lease)
            except JobCanceled as exc:
                return end_canceled(self.records, job_id, lease.token, exc)
            except Exception as exc:
                log.exception("job %s: %s failed", job_id, what)
                self.records.fail(job_id, lease.token, failure_message(what, exc))
                return "failed"
            finally:
                self.current_job = None
                if self.backend.loaded_mode != loaded:
                    self.switches += 1
            if result is None:
                return "handed off"
            result["run_seconds"] = round(time.perf_counter() - began, 4)
            if self.records.succeed(job_id, lease.token, result):
                log.info("job %s: succeeded in %.2fs", job_id, result["run_seconds"])
                return "succeeded"
            log.warning("job %s: finished but lost its lease; another worker owns the result", job_id)
            return "superseded"

    def _generate(self, job: GenerateJob, lease: Lease) -> dict[str, Any]:
        on_step = step_reporter(self.records, job.job_id, lease.token)
        generated = self.backend.generate(job, on_step=on_step, **self._inputs(job))
        key = generated_key(job.job_id) if job.superres else result_object_key(job.job_id)
        self.store.put(key, encode_png(generated.image, a1111_parameters(job, generated.sampler)), "image/png")
        return {
            "key": key,
            "seed": job.params.seed,
            "mode": job.mode.name,
            "width": generated.image.width,
            "height": generated.image.height,
            "sampler": generated.sampler,
        }

    def _inputs(self, job: GenerateJob) -> dict[str, Any]:
        """The job's input images from the store, decoded; only those it has, so txt2img backends need none."""
        if job.params.init_image is None:
            return {}
        data = self.store.get(job.params.init_image)
        with Image.open(io.BytesIO(data)) as image:
            return {"init_image": image.convert("RGB")}


def failure_message(what: str, exc: Exception) -> str:
    if isinstance(exc, JobError):
        return str(exc)
    if what.startswith("custom handler"):
        return f"{what} failed: {type(exc).__name__}: {exc}"
    return (
        f"{what} failed on the worker: {type(exc).__name__}: {exc}. "
        "Check that the mode's model and LoRA files exist and are complete, then submit the job again."
    )
