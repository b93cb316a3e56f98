"""The original Dream Lab's synchronous endpoints, as submit-then-wait wrappers over the job path."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.jobs import SUBMIT_ERRORS, result_png
from api.openapi import documented
from api.schemas import JobRequest
from api.schemas.generation import parse_job_request
from api.services import services
from api.superres_fields import generation_options, sr_settings
from api.waiting import GONE, wait_for_success
from api.webhook_fields import parse_webhook

bp = Blueprint("legacy", __name__)


@bp.post("/generate")
@documented(
    tags=("legacy",),
    json=JobRequest,
    ok={200: (None, "The image; headers `X-Mode`, `X-Seed`, `X-SuperRes`, `X-SR-Passes`, `X-Job-Id`.")},
    errors={
        **SUBMIT_ERRORS,
        409: "The job was canceled while this request waited for it (`X-Job-Id`).",
        410: GONE,
        500: "The job failed; the message says why (`X-Job-Id`).",
        504: "The job did not finish within `DEFAULT_TIMEOUT` (+ `SR_REQUEST_TIMEOUT` with superres); "
        "`Location` is the job to poll.",
    },
    media={200: ("image/png", "image/jpeg")},
)
def generate():
    """Generate an image in one blocking call: a job like any other, submitted then waited for."""
    svc = services()
    sr = sr_settings()
    body = request.get_json(silent=True)
    generation = parse_job_request(body, svc.modes)
    params = generation.params
    superres = generation_options(generation.superres, sr, params.width, params.height)
    job_id = svc.submit_generation(generation.mode, params, superres, generation.uploads, parse_webhook(body))["id"]
    timeout = svc.settings.default_timeout + (sr.request_timeout if superres else 0)
    setting = "DEFAULT_TIMEOUT + SR_REQUEST_TIMEOUT" if superres else "DEFAULT_TIMEOUT"
    record = wait_for_success(svc, job_id, timeout, setting)
    result = record["result"]
    passes = result.get("superres", {}).get("passes", 0)
    headers = {
        "X-Mode": record["mode"],
        "X-Seed": str(result["seed"]),
        "X-SuperRes": "1" if passes else "0",
        "X-SR-Passes": str(passes),
        "X-Job-Id": job_id,
    }
    return Response(result_png(record), mimetype=result.get("content_type", "image/png"), headers=headers)
