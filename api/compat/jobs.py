"""The job path as the compatible APIs use it: submit a native request body, wait, read the images."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

from flask import current_app
from PIL import Image

from api.caller import owner_name
from api.errors import ApiError
from api.init_image import MAX_BYTES, MAX_PIXELS, PNG_SIGNATURE
from api.jobs import result_png
from api.services import services
from api.validation import parse_generation
from api.waiting import wait_for_success
from api.webhook_fields import header_webhook
from jobs.images import ImageRejected, decode
from jobs.keys import PREFIX


def latest_key(owner: str) -> str:
    """The caller's latest compatible job: what A1111's ``progress`` and ``interrupt`` act on."""
    return f"{PREFIX}:compat:latest:{owner}"


def submit(body: dict[str, Any], ignored: list[str] | None = None) -> dict[str, Any]:
    """Validate and queue ``body`` (a ``POST /api/jobs`` body) exactly as the native route does; the record."""
    svc = services()
    mode, params, uploads = parse_generation(body, svc.modes)
    record = svc.submit_generation(mode, params, None, uploads, header_webhook())
    svc.redis.set(latest_key(owner_name()), record["id"], ex=svc.settings.job_ttl)
    if ignored:
        current_app.logger.info("job %s: ignored fields the service does not use: %s", record["id"], ignored)
    return record


def wait(job_id: str) -> dict[str, Any]:
    """The succeeded record, waiting as ``POST /generate`` does (DEFAULT_TIMEOUT, then 504 with Location)."""
    svc = services()
    return wait_for_success(svc, job_id, svc.settings.default_timeout, "DEFAULT_TIMEOUT")


def images(record: dict[str, Any]) -> list[bytes]:
    """Every image of a succeeded generation, in seed order."""
    count = len(record["result"].get("images") or [None])
    return [result_png(record, index) for index in range(count)]


def latest_job() -> dict[str, Any] | None:
    """The record of the caller's latest compatible job, None when it has none (or it expired)."""
    svc = services()
    job_id = svc.redis.get(latest_key(owner_name()))
    return svc.records.get(job_id.decode()) if job_id else None


def renamed(error: ApiError, names: dict[str, str]) -> ApiError:
    """``error`` speaking the client's field names (``names``: native -> theirs)."""
    words = re.compile(r"\b(" + "|".join(re.escape(native) for native in names) + r")\b")
    message = words.sub(lambda match: names[match.group(1)], error.message)
    field = error.field
    return ApiError(error.status, message, names.get(field, field) if field else None, error.headers)


def mask_base64(data: bytes, field: str, white_from) -> str:
    """A client's mask as the native ``mask_image`` (base64 PNG, white = repaint): ``white_from`` maps the
    decoded image (mode L, LA, RGB or RGBA) to that grey mask, or raises ApiError."""
    return _base64_png(white_from(_decoded(data, field)))


def png_base64(data: bytes, field: str) -> str:
    """An uploaded image as the native ``init_image`` (base64 PNG): a PNG as sent, JPEG or WebP converted."""
    if data.startswith(PNG_SIGNATURE) and len(data) <= MAX_BYTES:
        return base64.b64encode(data).decode("ascii")
    return _base64_png(_decoded(data, field))


def _decoded(data: bytes, field: str) -> Image.Image:
    """An uploaded image decoded within the init-image limits, or a 413/400 naming ``field``."""
    if len(data) > MAX_BYTES:
        raise ApiError(413, f"{field} is larger than {MAX_BYTES // (1024 * 1024)} MiB", field)
    try:
        return decode(data, MAX_PIXELS)
    except ImageRejected as exc:
        raise ApiError(400, f"{field}: {exc}", field) from None


def _base64_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
