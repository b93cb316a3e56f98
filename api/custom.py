"""Custom jobs: a handler registered on the workers, run on JSON arguments."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request, url_for

from api.errors import ApiError
from api.services import services
from api.status import live_workers
from api.validation import json_object
from api.views import public_job

bp = Blueprint("custom", __name__)
ARGS_MAX_BYTES = 64 * 1024


@bp.post("/api/custom")
def submit_custom():
    svc = services()
    body = json_object(request.get_json(silent=True))
    unknown = sorted(set(body) - {"handler", "args"})
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; accepted fields are ['handler', 'args']", unknown[0])
    handler = body.get("handler")
    if not isinstance(handler, str) or not handler:
        raise ApiError(400, "handler is required: the name of a handler registered on the workers", "handler")
    offered = sorted({name for worker in live_workers(svc) for name in worker["handlers"]})
    if handler not in offered:
        raise ApiError(400, f"no live worker offers the custom handler {handler!r}; offered: {offered}", "handler")
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise ApiError(400, "args must be a JSON object", "args")
    if len(json.dumps(args)) > ARGS_MAX_BYTES:
        raise ApiError(400, f"args are larger than {ARGS_MAX_BYTES} bytes of JSON", "args")
    record = svc.submit_custom(handler, args)
    return jsonify(public_job(record)), 202, {"Location": url_for("jobs.get_job", job_id=record["id"])}
