"""Submit-then-wait: block until a job ends and turn anything but success into the right error."""

from __future__ import annotations

from typing import Any

from flask import url_for

from api.errors import ApiError
from api.services import Services
from jobs.records import CANCELED, SUCCEEDED, TERMINAL

GONE = "The job's record expired while waiting (`JOB_TTL`), or the object store no longer has its image."


def wait_for_success(svc: Services, job_id: str, timeout: float, setting: str) -> dict[str, Any]:
    """The succeeded record; 504 with ``Location`` after ``timeout`` s (named by ``setting``), 409 when
    canceled, 500 on failure."""
    record = svc.records.wait(job_id, timeout)
    location = url_for("jobs.get_job", job_id=job_id)
    if record is None:
        raise ApiError(410, f"the record of job {job_id} expired while waiting (JOB_TTL)")
    if record["status"] not in TERMINAL:
        raise ApiError(
            504,
            f"job {job_id} did not finish within {setting}={timeout:g}s; "
            f"it is still queued or running: poll {location}",
            headers={"Location": location, "X-Job-Id": job_id},
        )
    if record["status"] == CANCELED:
        raise ApiError(
            409,
            f"job {job_id} was canceled ({record['error']['message']}); submit it again to get an image",
            headers={"X-Job-Id": job_id},
        )
    if record["status"] != SUCCEEDED:
        message = record.get("error", {}).get("message", f"job {job_id} was {record['status']}")
        raise ApiError(500, message, headers={"X-Job-Id": job_id})
    return record
