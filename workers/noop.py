"""A backend that does no inference: a black image at once.

Only for measuring the job system's own overhead (bench/overhead.py); select it
with WORKER_BACKEND=noop.  Never used by a mode.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from jobs.messages import GenerateJob, ResolvedMode
from workers.base import Generated, OneModeBackend, StepCallback


class NoopBackend(OneModeBackend):
    name = "noop"
    serves = "torch"  # stands in for the torch pool, to measure overhead

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        self._mode = mode.name
        return 0.0

    def memory_report(self) -> dict[str, Any]:
        return {"device": "none", "models": []}

    def generate(self, job: GenerateJob, on_step: StepCallback, init_image: Image.Image | None = None) -> Generated:
        self._mode = job.mode.name
        on_step(1, 1)
        return Generated(image=Image.new("RGB", (job.params.width, job.params.height)), sampler="none")
