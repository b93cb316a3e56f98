"""The small request bodies: a mode switch and a custom job."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas.parsing import field_error
from api.schemas.webhooks import WebhookEvents, WebhookUrl, needs_webhook

ARGS_MAX_BYTES = 64 * 1024


class SwitchRequest(BaseModel):
    """Queue a switch to a mode behind the jobs already queued for it."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"allOf": [needs_webhook()]})

    mode: str = Field(
        min_length=1,
        description="The name of the mode to switch to (`GET /api/modes` lists them); an unknown name answers 404.",
        examples=["demo"],
    )
    webhook: WebhookUrl = None
    webhook_events_filter: WebhookEvents = None


class CustomJobRequest(BaseModel):
    """Run a handler registered on the workers on JSON arguments."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"allOf": [needs_webhook()]})

    handler: str = Field(
        min_length=1,
        description="The name of a handler registered on the workers (a live worker must offer it)",
        examples=["echo"],
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description=f"The handler's arguments, at most {ARGS_MAX_BYTES} bytes of JSON."
    )
    webhook: WebhookUrl = None
    webhook_events_filter: WebhookEvents = None

    @field_validator("args")
    @classmethod
    def _small(cls, args: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(args)) > ARGS_MAX_BYTES:
            raise field_error(f"args are larger than {ARGS_MAX_BYTES} bytes of JSON")
        return args
