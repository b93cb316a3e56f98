"""Stopping a job its worker holds when a cancel is requested (``DELETE /api/jobs/<id>``).

The API flags the running job (jobs/records.py); the worker learns of it from the
progress write it makes after a step, and a step callback raises JobCanceled,
which unwinds the pipeline mid-run.  The runner then ends the job ``canceled``
under its lease and takes the next job.  Progress is written at most every
PROGRESS_EVERY seconds (and always the last step): a fleet's Redis pays for every
write, and a cancel is still noticed within one step or PROGRESS_EVERY seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from jobs.records import STEP_CANCELED, JobRecords
from tasks.lease import Lease

log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.25  # seconds


class JobCanceled(Exception):
    """A cancel was requested for the job being run; the message says where it stopped."""


def step_reporter(
    records: JobRecords,
    job_id: str,
    token: str,
    unit: str = "step",
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[int, int], None]:
    """A progress callback that records ``unit`` i of n (the first and the last, and between them one
    at most every PROGRESS_EVERY seconds) and raises JobCanceled once a cancel is requested.

    A write that finds Redis unreachable is skipped, not raised: progress is best effort, and the
    job goes on under its lease (a Redis restart keeps the lease; the terminal write needs Redis)."""
    written = -PROGRESS_EVERY

    def on_step(done: int, total: int) -> None:
        nonlocal written
        now = clock()
        if done < total and now - written < PROGRESS_EVERY:
            return
        try:
            answer = records.progress(job_id, token, done, total)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("job %s: %s %d of %d not recorded, Redis did not answer: %s", job_id, unit, done, total, exc)
            return
        written = now
        if answer == STEP_CANCELED:
            raise JobCanceled(f"canceled on request after {unit} {done} of {total}")

    return on_step


def check_canceled(lease: Lease) -> None:
    """Raise JobCanceled when a cancel came while the job waited for this worker (a hand-off or redelivery):
    the claim that took ``lease`` answered it, in the same round trip."""
    if lease.stop_requested:
        raise JobCanceled("canceled on request before this worker started it")


def end_canceled(records: JobRecords, lease: Lease, stopped: JobCanceled) -> str:
    """End the job ``canceled`` under its ``lease``; returns what happened, as the task's result."""
    if lease.end(records.end_canceled, str(stopped)):
        log.info("job %s: %s", lease.job_id, stopped)
        return "canceled"
    log.warning("job %s: stopped on a cancel request but lost its lease; another worker owns the job", lease.job_id)
    return "superseded"
