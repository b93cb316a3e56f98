"""Custom jobs: a handler registered on the workers, run on JSON arguments."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from api.errors import ApiError
from api.openapi import documented
from api.schemas import CustomJobRequest, parse
from api.schemas.responses import Job
from api.services import services
from api.status import live_workers
from api.views import public_job
from api.webhook_fields import checked_webhook
from jobs.wording import choices

bp = Blueprint("custom", __name__)


@bp.post("/api/custom")
@documented(
    tags=("jobs",),
    json=CustomJobRequest,
    ok={202: (Job, "The custom job is queued; poll it (`Location`).")},
    errors={
        400: "A field is unknown, missing or wrong, or no live worker offers the handler.",
        403: "A `user` key; this needs an `admin` key.",
        429: "`QUEUE_MAX` jobs are waiting.",
    },
)
def submit_custom():
    """Queue a custom job: a handler registered on the workers, run on JSON arguments."""
    svc = services()
    body = parse(CustomJobRequest, request.get_json(silent=True))
    handler, args = body.handler, body.args
    offered = sorted({name for worker in live_workers(svc) for name in worker["handlers"]})
    if handler not in offered:
        raise ApiError(
            400, f"no live worker offers the custom handler {handler!r}; offered: {choices(offered)}", "handler"
        )
    record = svc.submit_custom(handler, args, checked_webhook(body.webhook, body.webhook_events_filter))
    return jsonify(public_job(record)), 202, {"Location": url_for("jobs.get_job", job_id=record["id"])}
