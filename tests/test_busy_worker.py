"""A worker running a job still answers Celery's control commands: `celery inspect` and Flower see it busy, not dead.

Real processes: redis-server, the API under gunicorn, a torch worker on the tiny model.
"""

from __future__ import annotations

from celery import Celery

from tests.client import poll
from tests.processes import wait_for
from tests.test_cancel_e2e import start_long_job, stop


def inspector(stack) -> Celery:
    return Celery(broker=stack.env["REDIS_URL"])


def replies(app: Celery, command: str) -> dict:
    """One broadcast of ``inspect <command>``; the workers that answered within a second."""
    return getattr(app.control.inspect(timeout=1.0), command)() or {}


def test_a_busy_worker_answers_ping_and_lists_its_running_job(api_stack):
    app = inspector(api_stack)
    job = start_long_job(api_stack.base, "keeps the worker busy while it is inspected")

    assert wait_for(lambda: replies(app, "ping"), 60, "the busy worker to answer ping")

    def running() -> list[dict]:
        return [task for tasks in replies(app, "active").values() for task in tasks]

    tasks = wait_for(running, 60, "`inspect active` to list the running job")
    assert [task["id"] for task in tasks] == [job["id"]]
    (payload,) = tasks[0]["args"]
    assert (payload["job_id"], payload["mode"]["name"]) == (job["id"], "slow")
    assert stop(api_stack.base, job["id"])["status"] == "canceled"
    poll(api_stack.base, job["id"])
