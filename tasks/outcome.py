"""What a delivery's Celery task reports: its job's outcome, so Flower and `celery events` agree with the record.

The runners end jobs in our own records (jobs/records.py) and return what a delivery
did as a word.  Left at that, every task read SUCCESS.  After a delivery, its task
mirrors the record of the job it carries:

- job failed: the task fails (FAILURE) with the job's error message;
- job canceled: the task sends ``task-revoked`` and ends without a result event, so
  Flower and ``celery events`` show it REVOKED;
- job succeeded: SUCCESS, with a result saying ``succeeded``, or ``dropped: ...``
  when this delivery was a duplicate of a job that had already ended (a redelivery,
  or a batch member another delivery ran);
- job not ended (handed on to super-resolution, run by a live holder, or queued
  while this delivery's turn ran another job of its mode, tasks/turns.py): SUCCESS,
  with what the delivery did and the job's status.

A duplicate delivery of a failed or canceled job reports the same state again, so a
late duplicate never turns a failed job's task into a success.
"""

from __future__ import annotations

import json

import redis
from celery import Task
from celery.exceptions import Ignore

from jobs.keys import job_key
from jobs.records import CANCELED, FAILED, SUCCEEDED

DROPPED = "dropped"


class JobFailed(Exception):
    """The task's job failed; the message is the job's error."""


def report(task: Task, client: redis.Redis, job_id: str, outcome: str) -> str:
    """The result of a delivery of ``job_id`` that ended with ``outcome``; raises for a failed or canceled job.

    ``succeeded`` is the runner's word for the terminal write it made itself, under the lease, on this
    very job (a turn that ran another job says so): the record needs no reading.
    """
    if outcome == SUCCEEDED:
        return outcome
    try:
        status, error = _status(client, job_id)
    except redis.RedisError as exc:  # the job has ended or moved on already; only the report is lost
        return f"{outcome}: job {job_id}'s record could not be read ({exc})"
    duplicate = outcome == DROPPED
    if status == FAILED:
        raise JobFailed(f"{error} (a duplicate delivery, dropped)" if duplicate else error)
    if status == CANCELED:
        task.send_event("task-revoked", terminated=False, signum=None, expired=False)
        raise Ignore(f"job {job_id} canceled: {error}")
    if status == SUCCEEDED:
        return f"{DROPPED}: a duplicate delivery; job {job_id} already succeeded" if duplicate else outcome
    if status is None:
        return f"{outcome}: job {job_id} has no record (expired)"
    return f"{outcome}: job {job_id} is {status}"


def _status(client: redis.Redis, job_id: str) -> tuple[str | None, str]:
    """The job's status and error message, from its record."""
    status, error = client.hmget(job_key(job_id), "status", "error")
    message = json.loads(error).get("message", "") if error else ""
    return (status.decode() if status else None), message
