"""The two webhook fields every job request takes (``POST /api/jobs``, ``/api/superres``, ``/api/modes/switch``,
``/api/custom`` and the original Dream Lab's ``/generate`` and ``/superres``): declared once here, so each
request model and the OpenAPI document describe them alike.  api/webhook_fields.py checks them against the
settings at submit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

WebhookEvent = Literal["start", "progress", "completed"]

WebhookUrl = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=2000,
        description="A URL told of the job's events (POST of the job as `GET /api/jobs/{job_id}` shows it, "
        "signed with `WEBHOOK_SECRET`). Private and loopback hosts are refused unless `WEBHOOK_ALLOW` lists "
        "them. 400 when webhooks are off (no `WEBHOOK_SECRET`).",
    ),
]

WebhookEvents = Annotated[
    list[WebhookEvent] | None,
    Field(
        min_length=1,
        description="Which events to send (default all): `start`, `progress` (throttled; jobs that report "
        "steps), `completed` (retried until delivered or `WEBHOOK_DEADLINE`). Needs `webhook`.",
    ),
]


def needs_webhook() -> dict[str, Any]:
    """JSON Schema: ``webhook_events_filter``, when set and not null, needs ``webhook`` set and not null."""
    present = {"not": {"type": "null"}}
    return {
        "if": {"required": ["webhook_events_filter"], "properties": {"webhook_events_filter": present}},
        "then": {"required": ["webhook"], "properties": {"webhook": present}},
    }
