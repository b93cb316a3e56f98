"""The super-resolution task: a thin shell around SuperResRunner."""

from __future__ import annotations

import os
from typing import Any

from jobs.superres import SUPERRES_TASK, SuperResJob
from tasks.celery_app import app
from tasks.superres_context import get_superres_runner


@app.task(name=SUPERRES_TASK, bind=True)
def superres(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    worker = f"{self.request.hostname}/{os.getpid()}"
    return get_superres_runner().run(SuperResJob.from_dict(job), worker, delivery_tag)
