"""The super-resolution task: a thin shell around SuperResRunner, reporting its job's outcome (tasks/outcome.py)."""

from __future__ import annotations

import os
from typing import Any

from jobs.superres import SUPERRES_TASK, SuperResJob
from tasks.celery_app import app
from tasks.outcome import JobFailed, report
from tasks.superres_context import get_superres_runner


@app.task(name=SUPERRES_TASK, bind=True, throws=(JobFailed,))
def superres(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    worker = f"{self.request.hostname}/{os.getpid()}"
    runner = get_superres_runner()
    outcome = runner.run(SuperResJob.from_dict(job), worker, delivery_tag)
    return report(self, runner.redis, job["job_id"], outcome)
