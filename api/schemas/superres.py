"""The multipart upload of ``POST /superres`` and ``POST /api/superres``: form fields arrive as strings."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from api.schemas.generation import DEFAULT_FORMAT, DEFAULT_MAGNITUDE, DEFAULT_QUALITY, OutFormat, out_format
from api.schemas.parsing import parse
from api.schemas.webhooks import WebhookEvents, WebhookUrl, needs_webhook
from jobs.superres import MAX_MAGNITUDE, SuperResOptions

Upload = Annotated[
    bytes, WithJsonSchema({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"})
]


class SuperResUpload(BaseModel):
    """An image to upscale and how. Unknown fields are refused with 400."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["file"], "allOf": [needs_webhook()]})

    file: Upload = Field(
        description="The image: PNG, JPEG, WebP, BMP, GIF (first frame) or TIFF, at most `SR_MAX_UPLOAD_BYTES`, "
        "not empty. EXIF orientation is applied; alpha is kept.",
        json_schema_extra={"minLength": 1},
    )
    magnitude: int = Field(
        DEFAULT_MAGNITUDE, ge=1, le=MAX_MAGNITUDE, description="Passes of x3 each (1 -> x3, 2 -> x9, 3 -> x27)."
    )
    out_format: OutFormat = Field(
        DEFAULT_FORMAT, description="`jpg` is accepted for `jpeg`. JPEG has no alpha: transparent areas become white."
    )
    quality: int = Field(DEFAULT_QUALITY, ge=1, le=100, description="JPEG quality (ignored for PNG).")
    webhook: WebhookUrl = None
    webhook_events_filter: WebhookEvents = None

    @field_validator("magnitude", "quality", "out_format", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any, info: Any) -> Any:
        if value == "":
            return cls.model_fields[info.field_name].default
        return out_format(value) if info.field_name == "out_format" else value

    @field_validator("webhook", "webhook_events_filter", mode="before")
    @classmethod
    def _form_webhook(cls, value: Any, info: Any) -> Any:
        """An empty field is none; the events filter is a repeated field or one comma-separated field."""
        if value == "":
            return None
        if info.field_name == "webhook_events_filter" and isinstance(value, str):
            return [event.strip() for event in value.split(",")]
        return value

    def options(self) -> SuperResOptions:
        return SuperResOptions(magnitude=self.magnitude, out_format=self.out_format, quality=self.quality)


def upload_request(data: bytes, form: dict[str, str | list[str]]) -> SuperResUpload:
    """An upload's form fields validated (strings; omitted or empty ones take the defaults), or a 400."""
    return parse(SuperResUpload, {**form, "file": data})
