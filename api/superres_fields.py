"""Super-resolution against this server's settings: enabled, and within SR_MAX_PIXELS.  The request
fields themselves are validated by their models (api/schemas/)."""

from __future__ import annotations

from flask import current_app

from api.errors import ApiError
from config import SuperResSettings
from jobs.superres import SuperResOptions, pixel_limit_message

EXTENSION = "dreamlab.superres"  # app.extensions key of the SuperResSettings


def sr_settings() -> SuperResSettings:
    return current_app.extensions[EXTENSION]


def require_enabled(sr: SuperResSettings, field: str | None = None) -> None:
    if not sr.enabled:
        raise ApiError(503, "super-resolution is disabled on this server (SR_ENABLED=0)", field)


def generation_options(
    options: SuperResOptions | None, sr: SuperResSettings, width: int, height: int
) -> SuperResOptions | None:
    """The request's post-generation SR options, checked against this server's settings (503 when SR is off)."""
    if options is None:
        return None
    require_enabled(sr, "superres")
    check_pixels(width, height, options.magnitude, sr, "superres_magnitude")
    return options


def check_pixels(width: int, height: int, magnitude: int, sr: SuperResSettings, field: str) -> None:
    """400 naming SR_MAX_PIXELS and the size it would have made, before any work starts."""
    refusal = pixel_limit_message(width, height, sr.factor, magnitude, sr.max_pixels)
    if refusal:
        raise ApiError(400, refusal, field)
