"""The job tasks: thin shells around JobRunner, reporting their job's outcome to Celery (tasks/outcome.py)."""

from __future__ import annotations

from typing import Any

from jobs.keys import CUSTOM_TASK, GENERATE_TASK, SWITCH_TASK
from jobs.messages import CustomJob, GenerateJob, SwitchJob
from tasks.celery_app import app
from tasks.context import get_runner
from tasks.outcome import JobFailed, report


@app.task(name=GENERATE_TASK, bind=True, throws=(JobFailed,))
def generate(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    runner = get_runner()
    outcome = runner.turn(GenerateJob.from_dict(job), self.request.hostname, delivery_tag)
    return report(self, runner.redis, job["job_id"], outcome)


@app.task(name=SWITCH_TASK, bind=True, throws=(JobFailed,))
def switch_mode(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    runner = get_runner()
    outcome = runner.turn(SwitchJob.from_dict(job), self.request.hostname, delivery_tag)
    return report(self, runner.redis, job["job_id"], outcome)


@app.task(name=CUSTOM_TASK, bind=True, throws=(JobFailed,))
def custom(self, job: dict[str, Any]) -> str:
    delivery_tag = (self.request.properties or {}).get("delivery_tag")
    runner = get_runner()
    outcome = runner.custom(CustomJob.from_dict(job), self.request.hostname, delivery_tag)
    return report(self, runner.redis, job["job_id"], outcome)
