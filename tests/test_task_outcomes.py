"""A task's Celery outcome is its job's: FAILURE with the job's error, REVOKED when canceled, a dropped
duplicate delivery named as such.  Read from the workers' task events, as Flower reads them."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis
import requests
from celery import Celery

from jobs.keys import CUSTOM_QUEUE, CUSTOM_TASK, GENERATE_TASK, generation_queue
from jobs.messages import CustomJob, GenerateJob, GenerateParams, ResolvedMode
from tests.celery_events import EventWatch
from tests.client import poll, submit
from tests.conftest import TINY
from tests.test_cancel_e2e import start_long_job, stop


@pytest.fixture
def watched(make_stack):
    stack = make_stack(CUSTOM_HANDLER_MODULES="tests.handlers.sample")
    stack.start_worker()
    stack.base = stack.start_api()
    watch = EventWatch(stack.env["REDIS_URL"]).start()
    yield stack, watch
    watch.stop()


def add(base: str, numbers) -> dict:
    """Run the sample handler ``add`` as a custom job; its record once it ends."""
    response = requests.post(f"{base}/api/custom", json={"handler": "add", "args": {"numbers": numbers}}, timeout=60)
    assert response.status_code == 202, response.text
    return poll(base, response.json()["id"])


def deliver_again(stack, task: str, payload: dict, queue: str) -> None:
    """A second delivery of a job's task (the job's id is the task's), as a redelivery would bring it."""
    Celery(broker=stack.env["REDIS_URL"]).send_task(task, args=[payload], queue=queue, task_id=payload["job_id"])


def test_a_failed_job_is_a_failed_task_with_its_error_even_after_a_duplicate(watched):
    stack, watch = watched
    record = add(stack.base, "x")
    assert record["status"] == "failed"
    task = watch.task(record["id"], "FAILURE")
    assert task.exception == repr_of(record["error"]["message"])

    deliver_again(stack, CUSTOM_TASK, CustomJob(record["id"], "add", {"numbers": "x"}).to_dict(), CUSTOM_QUEUE)
    duplicate = watch.task(record["id"], "FAILURE", also=lambda t: "a duplicate delivery, dropped" in t.exception)
    assert record["error"]["message"] in duplicate.exception


def test_a_succeeded_job_is_a_success_and_its_dropped_duplicate_says_so(watched):
    stack, watch = watched
    record = poll(stack.base, submit(stack.base, prompt="once", seed=1)["id"])
    assert record["status"] == "succeeded"
    assert watch.task(record["id"], "SUCCESS").result == "'succeeded'"

    mode = ResolvedMode(name="demo", model_path=TINY, scheduler="lcm", backend="torch")
    again = GenerateJob(job_id=record["id"], mode=mode, params=GenerateParams(**record["params"]))
    deliver_again(stack, GENERATE_TASK, again.to_dict(), generation_queue("torch", "demo"))
    dropped = watch.task(record["id"], "SUCCESS", also=lambda t: "dropped" in t.result)
    assert dropped.result == f"'dropped: a duplicate delivery; job {record['id']} already succeeded'"


def test_a_canceled_job_is_a_revoked_task(watched):
    stack, watch = watched
    job = start_long_job(stack.base, "canceled while it runs")
    assert watch.task(job["id"], "STARTED").worker is not None
    assert stop(stack.base, job["id"])["status"] == "canceled"
    watch.task(job["id"], "REVOKED")


def repr_of(message: str) -> str:
    """How a task-failed event writes our JobFailed exception."""
    return f"JobFailed({message!r})"


def test_task_events_go_in_batches_and_none_is_lost(watched):
    """Each job's received, started and succeeded events all arrive, in at most two PUBLISHes a job
    (tasks/event_batches.py); Celery alone sends nearly one per event."""
    stack, watch = watched
    listener = redis.Redis.from_url(stack.env["REDIS_URL"]).pubsub(ignore_subscribe_messages=True)
    listener.psubscribe("*celeryev/task.multi")
    ids = [submit(stack.base, prompt=f"batched {i}", seed=i)["id"] for i in range(4)]
    assert [poll(stack.base, job_id)["status"] for job_id in ids] == ["succeeded"] * 4
    for job_id in ids:
        task = watch.task(job_id, "SUCCESS")
        assert task.received and task.started
    batches = published(listener)
    sent = [(event["uuid"], event["type"]) for batch in batches for event in batch if event["uuid"] in ids]
    kinds = ("task-received", "task-started", "task-succeeded")
    assert sorted(sent) == sorted((job_id, kind) for job_id in ids for kind in kinds)
    # A job's received and started events are milliseconds apart, so they always share a batch.
    assert len(batches) <= 2 * len(ids), f"{len(batches)} PUBLISHes for {len(sent)} events: the batching is off"


def published(listener: redis.client.PubSub) -> list[list[dict]]:
    """The event batches the listener holds, read until none came for two seconds."""
    batches, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < 2.0:
        message = listener.get_message(timeout=0.5)
        if message is not None:
            batches.append(json.loads(base64.b64decode(json.loads(message["data"])["body"])))
            quiet_since = time.monotonic()
    return batches
