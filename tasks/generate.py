"""The generation task: a thin shell around JobRunner."""

from __future__ import annotations

from typing import Any

from jobs.keys import GENERATE_TASK
from jobs.messages import GenerateJob
from tasks.celery_app import app
from tasks.context import get_runner


@app.task(name=GENERATE_TASK, bind=True)
def generate(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    return get_runner().run(GenerateJob.from_dict(job), self.request.hostname, delivery_tag)
