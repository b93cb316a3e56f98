"""The job API: submit, poll, fetch the result."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify, redirect, request, url_for

from api.caller import owner_name, sees_everything
from api.errors import ApiError
from api.openapi import documented
from api.schemas import JobRequest
from api.schemas.generation import parse_job_request
from api.schemas.responses import Job
from api.services import services
from api.superres_fields import generation_options, sr_settings
from api.views import public_job
from api.webhook_fields import parse_webhook
from jobs.records import SUCCEEDED
from storage import ObjectNotFound, Presigning

bp = Blueprint("jobs", __name__)


def load_record(job_id: str) -> dict:
    """The job's record, or a 404 (also for IDs that are not UUIDs, and for another key's job when
    the caller is a user key: it learns nothing of other keys' jobs, not even that they exist)."""
    if not _is_uuid(job_id):
        raise ApiError(404, f"no job {job_id!r}: job IDs are UUIDs returned by POST /api/jobs")
    record = services().records.get(job_id)
    if record is None or not (sees_everything() or record.get("owner") == owner_name()):
        raise ApiError(404, f"no job {job_id!r}; it never existed or its record expired (JOB_TTL)")
    return record


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def result_png(record: dict, index: int = 0) -> bytes:
    """The stored image ``index`` (PNG, or JPEG after super-resolution) of a succeeded job, or a 410 when
    the store no longer has it."""
    try:
        return services().store.get(image_key(record, index))
    except ObjectNotFound:
        raise _gone(record["id"]) from None


def image_key(record: dict, index: int) -> str:
    """The object key of image ``index`` of a succeeded generation (jobs from before ``images`` have one)."""
    images = record["result"].get("images") or [{"key": record["result"]["key"]}]
    if not 0 <= index < len(images):
        raise ApiError(404, f"job {record['id']} made {len(images)} image(s); index {index} is not one of them")
    return images[index]["key"]


def _gone(job_id: str) -> ApiError:
    return ApiError(410, f"the result of job {job_id} is no longer in the object store")


SUBMIT_ERRORS = {
    400: "The body is not a JSON object, or fields are unknown, missing, of the wrong type or out of range; "
    "`errors` lists each.",
    404: "`mode` names no mode in modes.yaml (`field` is `mode`).",
    413: "The body is larger than `MAX_JSON_BYTES`; refused from its `Content-Length` before it is read.",
    429: "`QUEUE_MAX` jobs are waiting, or the key reached `KEY_JOBS_MAX`, `KEY_JOBS_PER_DAY` or its request rate; "
    "nothing was queued (`Retry-After`).",
    503: "The job could not be stored or sent to the broker, or it asks for super-resolution and `SR_ENABLED=0`.",
}
JOB_NOT_FOUND = "No such job: the ID is not a UUID, never existed, its record expired (`JOB_TTL`), or is another key's."


@bp.post("/api/jobs")
@documented(
    tags=("jobs",),
    json=JobRequest,
    ok={202: (Job, "The job is queued; its record (`Location`: the job's URL).")},
    errors=SUBMIT_ERRORS,
)
def submit_job():
    """Queue a generation job; validated against its mode, nothing is queued unless the answer is 202."""
    svc = services()
    body = request.get_json(silent=True)
    generation = parse_job_request(body, svc.modes)
    params = generation.params
    superres = generation_options(generation.superres, sr_settings(), params.width, params.height)
    record = svc.submit_generation(generation.mode, params, superres, generation.uploads, parse_webhook(body))
    location = url_for("jobs.get_job", job_id=record["id"])
    return jsonify(public_job(record)), 202, {"Location": location}


@bp.get("/api/jobs/<job_id>")
@documented(tags=("jobs",), ok={200: (Job, "The job's record.")}, errors={404: JOB_NOT_FOUND})
def get_job(job_id: str):
    """A job's status, progress and result."""
    return jsonify(public_job(load_record(job_id)))


@bp.get("/api/jobs/<job_id>/result")
@documented(
    tags=("jobs",),
    ok={
        200: (None, "The image (PNG; JPEG when super-resolution made one)."),
        302: (None, "`STORE_SERVE=redirect`: a presigned URL of the image in the object store."),
    },
    errors={
        404: JOB_NOT_FOUND,
        409: "The job has not succeeded, or made no image.",
        410: "The object store no longer has the image.",
    },
    media={200: ("image/png", "image/jpeg")},
)
def job_result(job_id: str):
    """A succeeded job's image (the first of a job of several)."""
    return _serve_image(job_id, 0)


@bp.get("/api/jobs/<job_id>/images/<int:index>")
@documented(
    tags=("jobs",),
    ok={
        200: (None, "Image `index` (from 0) of a job of `n` images (PNG; JPEG when super-resolution made one)."),
        302: (None, "`STORE_SERVE=redirect`: a presigned URL of the image in the object store."),
    },
    errors={
        404: JOB_NOT_FOUND + " Or the job has no image `index`.",
        409: "The job has not succeeded, or made no image.",
        410: "The object store no longer has the image.",
    },
    media={200: ("image/png", "image/jpeg")},
)
def job_image(job_id: str, index: int):
    """Image ``index`` (from 0) of a job of several images (``n``)."""
    return _serve_image(job_id, index)


def _serve_image(job_id: str, index: int) -> Response:
    record = load_record(job_id)
    if record["status"] != SUCCEEDED:
        raise ApiError(409, f"job {job_id} is {record['status']}, not succeeded; poll GET /api/jobs/{job_id}")
    if "key" not in record["result"]:
        raise ApiError(
            409, f"job {job_id} is a {record['kind']} job and made no image; its outcome is GET /api/jobs/{job_id}"
        )
    svc = services()
    # STORE_SERVE=redirect sends the client to the store itself, sparing the API the bytes.
    if svc.settings.store_serve == "redirect" and isinstance(svc.store, Presigning):
        key = image_key(record, index)
        if not svc.store.exists(key):
            raise _gone(job_id)
        return redirect(svc.store.presigned_url(key, svc.settings.s3_presign_seconds), 302)
    return Response(result_png(record, index), mimetype=record["result"].get("content_type", "image/png"))
