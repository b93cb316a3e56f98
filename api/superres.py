"""Super-resolution over HTTP: ``POST /api/superres`` (202 + job) and the original Dream Lab's ``POST /superres``
(the upscaled bytes), both on the job path: the upload goes to the object store, the job to
the superres queue, and an SR worker does the work."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from api.caller import owner_name
from api.errors import ApiError
from api.jobs import result_png
from api.openapi import documented
from api.schemas import SuperResUpload
from api.schemas.responses import Job
from api.schemas.superres import upload_request
from api.services import Services, services
from api.superres_fields import require_enabled, sr_settings
from api.uploads import check_image, read_upload
from api.views import public_job
from api.waiting import GONE, wait_for_success
from api.webhook_fields import Webhook, checked_webhook
from config import SuperResSettings
from jobs.images import ImageInfo
from jobs.superres import SUPERRES_KIND, SUPERRES_QUEUE, SUPERRES_TASK, SuperResJob, SuperResOptions, upload_key

bp = Blueprint("superres", __name__)


UPLOAD_ERRORS = {
    400: "Not multipart/form-data, an unknown or out-of-range field, or a file that is empty, not an image, truncated, "
    "of zero size, beyond 32:1, a decompression bomb, or whose output would exceed `SR_MAX_PIXELS`.",
    413: "The upload is larger than `SR_MAX_UPLOAD_BYTES` (`field` is `file`).",
    429: "`SR_QUEUE_MAX` super-resolution jobs are waiting, or the key reached its limits; nothing was queued.",
    503: "Super-resolution is disabled (`SR_ENABLED=0`), or the job could not be stored or sent to the broker.",
}


@bp.post("/api/superres")
@documented(
    tags=("superres",),
    form=SuperResUpload,
    ok={202: (Job, "The super-resolution job is queued; its record (`Location`).")},
    errors=UPLOAD_ERRORS,
)
def submit_superres():
    """Queue the upscaling of an uploaded image."""
    record = _accept_upload()
    return jsonify(public_job(record)), 202, {"Location": url_for("jobs.get_job", job_id=record["id"])}


@bp.post("/superres")
@documented(
    tags=("superres",),
    form=SuperResUpload,
    ok={200: (None, "The upscaled image; headers `X-SuperRes`, `X-SR-Passes`, `X-Job-Id`.")},
    errors={
        **UPLOAD_ERRORS,
        409: "The job was canceled while this request waited for it.",
        410: GONE,
        500: "The job failed; the message says why.",
        504: "The job did not finish within `SR_REQUEST_TIMEOUT`; `Location` is the job to poll.",
    },
    media={200: ("image/png", "image/jpeg")},
)
def superres_sync():
    """Upscale an uploaded image in one blocking call (a job like any other)."""
    sr = sr_settings()
    record = _accept_upload()
    done = wait_for_success(services(), record["id"], sr.request_timeout, "SR_REQUEST_TIMEOUT")
    result = done["result"]
    headers = {"X-SuperRes": "1", "X-SR-Passes": str(result["passes"]), "X-Job-Id": done["id"]}
    return Response(result_png(done), mimetype=result["content_type"], headers=headers)


def _accept_upload() -> dict[str, Any]:
    sr = sr_settings()
    require_enabled(sr)
    data, form = read_upload(request, sr)
    upload = upload_request(data, form)
    webhook = checked_webhook(upload.webhook, upload.webhook_events_filter)
    options = upload.options()
    return submit(services(), sr, data, options, check_image(data, options.magnitude, sr), webhook)


def submit(
    svc: Services,
    sr: SuperResSettings,
    data: bytes,
    options: SuperResOptions,
    info: ImageInfo,
    webhook: Webhook | None = None,
) -> dict:
    """Put the upload in the store, then record and enqueue the job in one step; or raise having left nothing behind."""
    job_id = str(uuid.uuid4())
    job = SuperResJob(job_id=job_id, input_key=upload_key(job_id), options=options)
    params = {
        "magnitude": options.magnitude,
        "out_format": options.out_format,
        "quality": options.quality,
        "input_width": info.width,
        "input_height": info.height,
        "input_format": info.format,
        "input_bytes": len(data),
    }
    # Stored first: a worker may take the job the moment it is admitted.
    try:
        svc.store.put(job.input_key, data, f"image/{info.format.lower() or 'octet-stream'}")
    except Exception as exc:
        raise ApiError(503, f"could not store the upload ({exc}); check STORE_URL") from exc
    message = svc.producer.message(SUPERRES_TASK, job.to_dict(), SUPERRES_QUEUE, job.job_id)
    owner = owner_name()
    try:
        with svc.webhook_registered(job.job_id, webhook), svc.limits.job_place(owner, job.job_id):
            record, waiting = svc.records.create(
                job.job_id,
                SUPERRES_KIND,
                SUPERRES_KIND,
                params,
                [SUPERRES_QUEUE],
                sr.queue_max,
                message=message,
                owner=owner,
            )
            if record is None:
                raise ApiError(
                    429,
                    f"{waiting} super-resolution jobs are waiting (SR_QUEUE_MAX={sr.queue_max}); retry later",
                    headers={"Retry-After": str(svc.settings.retry_after)},
                )
    except BaseException:
        svc.store.delete(job.input_key)
        raise
    current_app.logger.info("job %s: super-resolution x%d queued", job.job_id, options.magnitude)
    return record
