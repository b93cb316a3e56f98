"""Validate super-resolution options: the multipart form of /superres and /api/superres, and the
post-generation fields of /generate and /api/jobs.  Errors name the field."""

from __future__ import annotations

from typing import Any

from flask import current_app

from api.errors import ApiError
from config import SuperResSettings
from jobs.superres import FORMATS, MAX_MAGNITUDE, SuperResOptions, pixel_limit_message

FORM_FIELDS = ("file", "magnitude", "out_format", "quality")
GENERATION_FIELDS = ("superres", "superres_magnitude", "superres_format", "superres_quality")
DEFAULT_MAGNITUDE, DEFAULT_FORMAT, DEFAULT_QUALITY = 1, "png", 95
_ALIASES = {"jpg": "jpeg"}
EXTENSION = "dreamlab.superres"  # app.extensions key of the SuperResSettings


def sr_settings() -> SuperResSettings:
    return current_app.extensions[EXTENSION]


def require_enabled(sr: SuperResSettings, field: str | None = None) -> None:
    if not sr.enabled:
        raise ApiError(503, "super-resolution is disabled on this server (SR_ENABLED=0)", field)


def form_options(form: dict[str, str]) -> SuperResOptions:
    """Options from multipart form fields (strings); omitted fields take the defaults."""
    unknown = sorted(set(form) - set(FORM_FIELDS))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; accepted fields are {list(FORM_FIELDS)}", unknown[0])
    return SuperResOptions(
        magnitude=_whole(form.get("magnitude"), "magnitude", DEFAULT_MAGNITUDE, 1, MAX_MAGNITUDE),
        out_format=_format(form.get("out_format"), "out_format"),
        quality=_whole(form.get("quality"), "quality", DEFAULT_QUALITY, 1, 100),
    )


def split_generation_fields(body: Any) -> tuple[Any, dict[str, Any]]:
    """(the body without the superres fields, those fields) so generation validation sees only its own."""
    if not isinstance(body, dict):
        return body, {}
    rest = {k: v for k, v in body.items() if k not in GENERATION_FIELDS}
    return rest, {k: v for k, v in body.items() if k in GENERATION_FIELDS}


def generation_options(fields: dict[str, Any], sr: SuperResSettings, width: int, height: int) -> SuperResOptions | None:
    """Post-generation SR options, or None when ``superres`` is absent or false (other fields then ignored)."""
    wanted = fields.get("superres")
    if wanted is not None and (not isinstance(wanted, (bool, int)) or wanted not in (0, 1)):
        raise ApiError(400, "superres must be true or false", "superres")
    options = SuperResOptions(
        magnitude=_whole(fields.get("superres_magnitude"), "superres_magnitude", DEFAULT_MAGNITUDE, 1, MAX_MAGNITUDE),
        out_format=_format(fields.get("superres_format"), "superres_format"),
        quality=_whole(fields.get("superres_quality"), "superres_quality", DEFAULT_QUALITY, 1, 100),
    )
    if not wanted:
        return None
    require_enabled(sr, "superres")
    check_pixels(width, height, options.magnitude, sr, "superres_magnitude")
    return options


def check_pixels(width: int, height: int, magnitude: int, sr: SuperResSettings, field: str) -> None:
    """400 naming SR_MAX_PIXELS and the size it would have made, before any work starts."""
    refusal = pixel_limit_message(width, height, sr.factor, magnitude, sr.max_pixels)
    if refusal:
        raise ApiError(400, refusal, field)


def _whole(value: Any, field: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        value = int(value.strip()) if value.strip().isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{field} must be a whole number between {low} and {high}", field)
    if not low <= value <= high:
        raise ApiError(400, f"{field} must be between {low} and {high}, got {value}", field)
    return value


def _format(value: Any, field: str) -> str:
    if value is None or value == "":
        return DEFAULT_FORMAT
    name = _ALIASES.get(str(value).lower(), str(value).lower()) if isinstance(value, str) else None
    if name not in FORMATS:
        raise ApiError(400, f"{field} must be one of {sorted(FORMATS)}, got {value!r}", field)
    return name
