"""The original Dream Lab's synchronous endpoints, as submit-then-wait wrappers over the job path."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.jobs import result_png
from api.services import services
from api.superres_fields import generation_options, split_generation_fields, sr_settings
from api.validation import parse_generation
from api.waiting import wait_for_success
from api.webhook_fields import parse_webhook

bp = Blueprint("legacy", __name__)


@bp.post("/generate")
def generate():
    svc = services()
    sr = sr_settings()
    body, sr_fields = split_generation_fields(request.get_json(silent=True))
    mode, params, uploads = parse_generation(body, svc.modes)
    superres = generation_options(sr_fields, sr, params.width, params.height)
    job_id = svc.submit_generation(mode, params, superres, uploads, parse_webhook(body))["id"]
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
