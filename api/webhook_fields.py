"""``webhook`` and ``webhook_events_filter`` on a job request: checked at submit (400), then registered
with the job (jobs/webhooks.py) for the sender (webhooks/sender.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from api.errors import ApiError
from jobs.webhooks import EVENTS
from jobs.wording import choices
from webhooks.policy import WebhookSettings, refusal

EXTENSION = "dreamlab.webhooks"
FIELDS = ("webhook", "webhook_events_filter")


@dataclass(frozen=True)
class Webhook:
    url: str
    events: list[str]


def parse_webhook(body: Any) -> Webhook | None:
    if not isinstance(body, dict) or body.get("webhook") is None:
        if isinstance(body, dict) and body.get("webhook_events_filter") is not None:
            raise ApiError(400, "webhook_events_filter needs a webhook URL", "webhook_events_filter")
        return None
    url = body["webhook"]
    if not isinstance(url, str) or len(url) > 2000:
        raise ApiError(400, "webhook must be a URL (a string of at most 2000 characters)", "webhook")
    events = body.get("webhook_events_filter", list(EVENTS))
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise ApiError(
            400, f"webhook_events_filter must be a non-empty list of {choices(EVENTS)}", "webhook_events_filter"
        )
    settings: WebhookSettings = current_app.extensions[EXTENSION]
    if not settings.secret:
        raise ApiError(400, "webhooks are off on this API: WEBHOOK_SECRET is not set", "webhook")
    why = refusal(url, settings)
    if why:
        raise ApiError(400, why, "webhook")
    return Webhook(url, sorted(set(events), key=EVENTS.index))
