"""The seed's synchronous endpoints, as submit-then-wait wrappers over the job path."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from api.errors import ApiError
from api.jobs import result_png
from api.services import services
from api.validation import parse_generation
from jobs.records import SUCCEEDED, TERMINAL

bp = Blueprint("legacy", __name__)


@bp.post("/generate")
def generate():
    svc = services()
    mode, params, uploads = parse_generation(request.get_json(silent=True), svc.modes)
    job_id = svc.submit_generation(mode, params, uploads)["id"]
    record = svc.records.wait(job_id, svc.settings.default_timeout)
    location = url_for("jobs.get_job", job_id=job_id)
    if record is None:
        raise ApiError(410, f"the record of job {job_id} expired while waiting (JOB_TTL)")
    if record["status"] not in TERMINAL:
        raise ApiError(
            504,
            f"job {job_id} did not finish within DEFAULT_TIMEOUT={svc.settings.default_timeout:g}s; "
            f"it is still queued or running: poll {location}",
            headers={"Location": location, "X-Job-Id": job_id},
        )
    if record["status"] != SUCCEEDED:
        message = record.get("error", {}).get("message", f"job {job_id} was {record['status']}")
        raise ApiError(500, message, headers={"X-Job-Id": job_id})
    data = result_png(record)
    headers = {
        "X-Mode": record["mode"],
        "X-Seed": str(record["result"]["seed"]),
        "X-SuperRes": "0",
        "X-Job-Id": job_id,
    }
    return Response(data, mimetype="image/png", headers=headers)
