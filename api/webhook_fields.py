"""``webhook`` and ``webhook_events_filter`` on any job request (or, on the compatible routes, the
``X-Dreamlab-Webhook`` headers): checked at submit (400), then registered with the job
(jobs/webhooks.py) for the sender (webhooks/sender.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, request

from api.errors import ApiError
from jobs.webhooks import EVENTS
from jobs.wording import choices
from webhooks.policy import WebhookSettings, refusal

EXTENSION = "dreamlab.webhooks"
URL_HEADER = "X-Dreamlab-Webhook"
EVENTS_HEADER = "X-Dreamlab-Webhook-Events"


@dataclass(frozen=True)
class Webhook:
    url: str
    events: list[str]


def parse_webhook(body: dict[str, Any]) -> Webhook | None:
    """The webhook of a generation body that JobRequest has validated (the fields' types and events)."""
    return checked_webhook(body.get("webhook"), body.get("webhook_events_filter"))


def checked_webhook(url: str | None, events: list[str] | None, field: str = "webhook") -> Webhook | None:
    """A validated request's webhook fields, allowed by the settings, or a 400 naming ``field``."""
    if url is None:
        if events is not None:
            raise ApiError(400, "webhook_events_filter needs a webhook URL", "webhook_events_filter")
        return None
    settings: WebhookSettings = current_app.extensions[EXTENSION]
    if not settings.secret:
        raise ApiError(400, "webhooks are off on this API: WEBHOOK_SECRET is not set", field)
    why = refusal(url, settings)
    if why:
        raise ApiError(400, why, field)
    return Webhook(url, sorted(set(events or EVENTS), key=EVENTS.index))


def header_webhook() -> Webhook | None:
    """The webhook of a compatible route's request (A1111, OpenAI): their clients cannot add body fields,
    but can add headers, so the URL comes in ``X-Dreamlab-Webhook`` and the events filter, comma-separated,
    in ``X-Dreamlab-Webhook-Events``."""
    url = request.headers.get(URL_HEADER) or None
    raw = request.headers.get(EVENTS_HEADER)
    events = None if raw is None else [event.strip() for event in raw.split(",")]
    if url is not None and len(url) > 2000:
        raise ApiError(400, f"{URL_HEADER} must be a URL of at most 2000 characters", URL_HEADER)
    if events is not None and any(event not in EVENTS for event in events):
        raise ApiError(400, f"{EVENTS_HEADER} must be a comma-separated list of {choices(EVENTS)}", EVENTS_HEADER)
    if url is None and events is not None:
        raise ApiError(400, f"{EVENTS_HEADER} needs {URL_HEADER}", EVENTS_HEADER)
    return checked_webhook(url, events, URL_HEADER)
