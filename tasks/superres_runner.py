"""Run one super-resolution job on an SR worker: lease, read the input from the store, upscale, store, record.

The same exactly-once machinery as generation (jobs/records.py, tasks/lease.py): a job
runs only under its lease, a duplicate delivery waits or is dropped, and only the lease
holder's terminal write counts.  A bad input fails its job with a message; the worker
carries on.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from PIL import Image

from config import SuperResSettings
from jobs.images import ImageRejected, decode
from jobs.infotext import PARAMETERS, read_parameters
from jobs.records import CLAIMED, GONE, JobRecords
from jobs.superres import FORMATS, UPSCALER, SuperResJob, output_key, pixel_limit_message
from storage import ObjectNotFound, ObjectStore
from tasks.cancel import JobCanceled, check_canceled, end_canceled, step_reporter
from tasks.lease import Lease
from workers.png import postprocess_parameters
from workers.superres.encode import encode, png_text
from workers.superres.engine import SuperResEngine
from workers.superres.pipeline import upscale

log = logging.getLogger(__name__)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class EngineInfo:
    """What a heartbeat reports about an SR worker (the fields tasks/heartbeat.py reads)."""

    name: str
    serves: str = "superres"
    loaded_mode: str | None = None

    def cached_modes(self) -> set[str]:
        return set()

    def memory_report(self) -> dict:
        """SR engines hold a few hundred kilobytes of weights: no device figures to report."""
        return {"device": "cpu", "models": []}


class SuperResRunner:
    """Everything an SR worker process needs to run jobs, built once per process."""

    def __init__(
        self,
        client: redis.Redis,
        records: JobRecords,
        store: ObjectStore,
        engine: SuperResEngine,
        settings: SuperResSettings,
        lease_ttl: float,
    ) -> None:
        self.redis = client
        self.records = records
        self.store = store
        self.engine = engine
        self.settings = settings
        self.lease_ttl = lease_ttl
        self.backend = EngineInfo(name=f"superres-{engine.name}")
        self.current_job: str | None = None
        self.switches = 0  # heartbeats report it; an SR worker never switches modes

    def run(self, job: SuperResJob, worker: str, delivery_tag: str | None) -> str:
        """Run ``job`` unless another delivery of it has run or is running; return what happened."""
        job_id = job.job_id
        lease = Lease(self.redis, job_id, self.lease_ttl, delivery_tag)
        code = lease.acquire(lambda token: self.records.claim(job_id, token, worker, self.lease_ttl))
        if code != CLAIMED:
            why = "its record expired" if code == GONE else "it already ended"
            log.info("job %s: %s; dropping this delivery", job_id, why)
            self.store.delete(job.input_key)  # a job canceled while queued leaves its input behind otherwise
            return "dropped"
        with lease:
            log.info("job %s: super-resolution x%d^%d on %s", job_id, self.engine.scale, job.options.magnitude, worker)
            self.current_job = job_id
            try:
                outcome = self._upscale(job, lease)
            finally:
                self.current_job = None
        if outcome in ("succeeded", "failed", "canceled"):
            self.store.delete(job.input_key)
        return outcome

    def _upscale(self, job: SuperResJob, lease: Lease) -> str:
        job_id, options = job.job_id, job.options
        began = time.perf_counter()
        try:
            check_canceled(lease)
            data, image = self._input(job)
            on_pass = step_reporter(self.records, job_id, lease.token, unit="pass")
            out = upscale(image, self.engine, options.magnitude, on_pass=on_pass)
            text = _infotext(data, self.engine.scale**options.magnitude, UPSCALER)
            key = output_key(job_id, options.out_format)
            self.store.put(key, encode(out, options.out_format, options.quality, text), FORMATS[options.out_format])
        except JobCanceled as exc:
            return end_canceled(self.records, lease, exc)
        except ImageRejected as exc:
            log.warning("job %s: input refused: %s", job_id, exc)
            lease.end(self.records.fail, f"super-resolution refused the input: {exc}")
            return "failed"
        except Exception as exc:
            log.exception("job %s: super-resolution failed", job_id)
            message = (
                f"super-resolution failed on worker with engine {self.engine.name!r}: {type(exc).__name__}: {exc}. "
                "Submit the job again; if it fails again, check the SR worker's log."
            )
            lease.end(self.records.fail, message)
            return "failed"
        result = self._result(job, key, image.size, out.size, time.perf_counter() - began)
        if lease.end(self.records.succeed, result):
            log.info("job %s: super-resolution succeeded in %.2fs", job_id, time.perf_counter() - began)
            return "succeeded"
        log.warning("job %s: finished but lost its lease; another worker owns the result", job_id)
        return "superseded"

    def _input(self, job: SuperResJob) -> tuple[bytes, Image.Image]:
        """The stored input and its decoded picture, checked again as the API did; raises ImageRejected."""
        try:
            data = self.store.get(job.input_key)
        except ObjectNotFound:
            raise ImageRejected(f"the input image {job.input_key} is no longer in the object store") from None
        image = decode(data, self.settings.max_pixels // self.engine.scale**2)
        refusal = pixel_limit_message(
            image.width, image.height, self.engine.scale, job.options.magnitude, self.settings.max_pixels
        )
        if refusal:
            raise ImageRejected(refusal)
        return data, image

    def _result(
        self, job: SuperResJob, key: str, size_in: tuple[int, int], size_out: tuple[int, int], seconds: float
    ) -> dict[str, Any]:
        options = job.options
        details = {
            "magnitude": options.magnitude,
            "passes": options.magnitude,
            "format": options.out_format,
            "engine": self.engine.name,
            "input_width": size_in[0],
            "input_height": size_in[1],
            "run_seconds": round(seconds, 4),
        }
        common = {"key": key, "content_type": FORMATS[options.out_format], "width": size_out[0], "height": size_out[1]}
        if job.base_result is None:
            return {**common, **details}
        base = job.base_result
        total = round(base.get("run_seconds", 0) + seconds, 4)
        images = [{**image, "key": key} for image in base.get("images", [])]  # one: SR takes a job of one image
        return {**base, **common, "run_seconds": total, "superres": details, **({"images": images} if images else {})}


def _infotext(data: bytes, scale: int, upscaler: str) -> dict[str, str]:
    """The input's PNG text chunks, its infotext saying the upscale as A1111's extras do."""
    text = png_text(data) if data.startswith(PNG_SIGNATURE) else {}
    with Image.open(io.BytesIO(data)) as source:
        parameters = read_parameters(source)
    return {**text, PARAMETERS: postprocess_parameters(parameters, scale, upscaler)}
