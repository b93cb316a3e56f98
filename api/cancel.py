"""Cancel a job: ``DELETE /api/jobs/<id>`` or ``POST /api/jobs/<id>/cancel``, the same behaviour."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from api.errors import ApiError
from api.jobs import load_record
from api.services import services
from api.views import public_job
from jobs.records import CANCELED_NOW, ENDED, GONE

bp = Blueprint("cancel", __name__)


@bp.delete("/api/jobs/<job_id>")
def delete_job(job_id: str):
    return cancel(job_id)


@bp.post("/api/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
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
