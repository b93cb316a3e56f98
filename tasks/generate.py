"""The job tasks: thin shells around JobRunner."""

from __future__ import annotations

from typing import Any

from jobs.keys import CUSTOM_TASK, GENERATE_TASK, SWITCH_TASK
from jobs.messages import CustomJob, GenerateJob, SwitchJob
from tasks.celery_app import app
from tasks.context import get_runner


@app.task(name=GENERATE_TASK, bind=True)
def generate(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    return get_runner().turn(GenerateJob.from_dict(job), self.request.hostname, delivery_tag)


@app.task(name=SWITCH_TASK, bind=True)
def switch_mode(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    return get_runner().turn(SwitchJob.from_dict(job), self.request.hostname, delivery_tag)


@app.task(name=CUSTOM_TASK, bind=True)
def custom(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    return get_runner().custom(CustomJob.from_dict(job), self.request.hostname, delivery_tag)
