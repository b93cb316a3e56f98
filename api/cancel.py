"""Cancel a job: ``DELETE /api/jobs/<id>`` or ``POST /api/jobs/<id>/cancel``, the same behaviour."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from api.errors import ApiError
from api.jobs import JOB_NOT_FOUND, load_record
from api.openapi import documented
from api.schemas.responses import Job
from api.services import services
from api.views import public_job
from jobs.records import CANCELED_NOW, ENDED, GONE

bp = Blueprint("cancel", __name__)


ANSWERS = {
    200: (Job, "The job was canceled before any worker held it; `error.message` says so."),
    202: (Job, "A worker runs the job: it is flagged (`cancel_requested`) and ends `canceled` after the current step."),
}
FAILURES = {404: JOB_NOT_FOUND, 409: "The job already succeeded, failed or was canceled; nothing changed."}


@bp.delete("/api/jobs/<job_id>")
@documented(tags=("jobs",), ok=ANSWERS, errors=FAILURES)
def delete_job(job_id: str):
    """Cancel a job (the same as POST /api/jobs/{job_id}/cancel); the record stays, `canceled`."""
    return cancel(job_id)


@bp.post("/api/jobs/<job_id>/cancel")
@documented(tags=("jobs",), ok=ANSWERS, errors=FAILURES)
def cancel_job(job_id: str):
    """Cancel a queued or running job; the record stays, `canceled`."""
    return cancel(job_id)


def cancel(job_id: str):
    """200 and the canceled record when no worker held the job; 202 when its worker stops at the next step."""
    svc = services()
    before = load_record(job_id)  # 404 for bad or unknown IDs
    outcome = svc.records.cancel(job_id, before.get("waiting"))  # the waiting set it joined, if any
    records = svc.records
    record = records.get(job_id)
    if outcome == GONE or record is None:
        raise ApiError(404, f"no job {job_id!r}; its record expired (JOB_TTL)")
    if outcome == ENDED:
        raise ApiError(
            409,
            f"job {job_id} already {record['status']}; only queued or running jobs can be canceled",
        )
    if outcome == CANCELED_NOW:
        current_app.logger.info("job %s: canceled; no worker held it", job_id)
        return jsonify(public_job(record)), 200
    current_app.logger.info("job %s: cancel requested; its worker stops after its current step", job_id)
    return jsonify(public_job(record)), 202
