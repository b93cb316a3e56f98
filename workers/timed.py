"""A backend that sleeps measured costs instead of running a model: for bench/router.py only.

Loading a mode sleeps ``TIMED_LOAD_SECONDS``; a job sleeps ``TIMED_STEP_SECONDS`` per
step (reporting progress as a pipeline does) and ``TIMED_DECODE_SECONDS`` for the
VAE, then returns a black image.  The router decides on the real queues and
heartbeats; only the inference is replaced, so that a trace of hundreds of jobs
costs minutes, not hours.  A batch sleeps its steps once and a decode per image, as a
pipeline call on several prompts does.  Select it with WORKER_BACKEND=timed; never used by a mode.
"""

from __future__ import annotations

import os
import time
from typing import Any

from PIL import Image

from jobs.messages import GenerateJob, ResolvedMode
from workers.base import Generated, OneModeBackend, StepCallback


def _seconds(name: str) -> float:
    return float(os.environ.get(name, "0"))


class TimedBackend(OneModeBackend):
    name = "timed"
    serves = "torch"  # stands in for the torch pool

    def __init__(self) -> None:
        super().__init__()
        self._load = _seconds("TIMED_LOAD_SECONDS")
        self._step = _seconds("TIMED_STEP_SECONDS")
        self._decode = _seconds("TIMED_DECODE_SECONDS")

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        if mode.name == self._mode:
            return 0.0
        time.sleep(self._load)
        self._mode = mode.name
        return self._load

    def memory_report(self) -> dict[str, Any]:
        return {"device": "none", "models": []}

    def generate(self, job: GenerateJob, on_step: StepCallback, init_image: Image.Image | None = None) -> Generated:
        return self.generate_batch([job], on_step)[0]

    def generate_batch(self, jobs: list[GenerateJob], on_step: StepCallback) -> list[Generated]:
        lead = jobs[0]
        self.prepare(lead.mode, lead.job_id)
        for step in range(lead.params.steps):
            time.sleep(self._step)
            on_step(step + 1, lead.params.steps)
        time.sleep(self._decode * len(jobs))
        return [Generated(Image.new("RGB", (job.params.width, job.params.height)), sampler="timed") for job in jobs]
