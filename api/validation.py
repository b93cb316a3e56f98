"""Validate a generation request against its mode; errors name the field."""

from __future__ import annotations

import secrets
from typing import Any

from api.errors import ApiError
from api.init_image import InitImage, parse_init_image
from jobs.messages import GenerateParams
from jobs.samplers import EDGE_SAMPLERS, accepted_sampler_names, resolve_sampler
from modes import Mode, ModesConfig, parse_size
from modes.config import EDGE_BACKENDS, LCM_MAX_STEPS, MAX_GUIDANCE

SEED_MAX = 2**32 - 1
PROMPT_MAX = 4000
MAX_PRIORITY = 10
N_MAX = 10  # images per job, as OpenAI's Images API bounds n
FIELDS = (
    "priority",
    "mode",
    "prompt",
    "negative_prompt",
    "size",
    "num_inference_steps",
    "guidance_scale",
    "seed",
    "init_image",
    "strength",
    "n",
    "sampler",
    "webhook",  # these two: api/webhook_fields.py
    "webhook_events_filter",
)
# img2img default: a light pass, as an SDXL refiner is used; raise it for stronger changes.
DEFAULT_STRENGTH = 0.3


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object, sent with Content-Type: application/json")
    return body


def parse_generation(body: Any, modes: ModesConfig) -> tuple[Mode, GenerateParams, dict[str, bytes]]:
    """The mode, the resolved parameters, and the uploads to store before enqueueing (object key -> bytes)."""
    body = json_object(body)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; accepted fields are {list(FIELDS)}", unknown[0])
    mode = _mode(body, modes)
    width, height = _size(body, mode)
    sampler = _sampler(body, mode)
    max_steps = min(mode.max_steps, LCM_MAX_STEPS) if (sampler or mode.scheduler) == "lcm" else mode.max_steps
    steps = _integer(body, "num_inference_steps", mode.default_steps, 1, max_steps)
    n = _integer(body, "n", 1, 1, N_MAX)
    init = None if body.get("init_image") is None else parse_init_image(body["init_image"])
    if init is not None and mode.backend != "torch":
        raise ApiError(
            400,
            f"mode {mode.name!r} runs on the {mode.backend} backend, which has no img2img; use a torch mode",
            "init_image",
        )
    params = GenerateParams(
        prompt=_text(body, "prompt", None),
        negative_prompt=_text(body, "negative_prompt", mode.negative_prompt),
        width=width,
        height=height,
        steps=steps,
        guidance=float(_number(body, "guidance_scale", mode.default_guidance, 0.0, MAX_GUIDANCE)),
        seed=_seed(body, n),
        init_image=init.key if init else None,
        strength=_strength(body, init, steps),
        priority=_integer(body, "priority", 0, -MAX_PRIORITY, MAX_PRIORITY),
        n=n,
        sampler=sampler,
    )
    return mode, params, {init.key: init.data} if init else {}


def _strength(body: dict[str, Any], init: InitImage | None, steps: int) -> float | None:
    if init is None:
        if body.get("strength") is not None:
            raise ApiError(400, "strength applies to img2img only: send it with an init_image", "strength")
        return None
    strength = float(_number(body, "strength", DEFAULT_STRENGTH, 0.0, 1.0))
    # The pipeline runs int(steps * strength) of the steps.
    if int(steps * strength) < 1:
        raise ApiError(
            400,
            f"strength {strength} of {steps} steps runs no denoising step; raise strength or num_inference_steps",
            "strength",
        )
    return strength


def _mode(body: dict[str, Any], modes: ModesConfig) -> Mode:
    name = body.get("mode")
    if name is None:
        return modes.modes[modes.default_mode]
    if not isinstance(name, str):
        raise ApiError(400, "mode must be a string", "mode")
    if name not in modes.modes:
        raise ApiError(404, f"unknown mode {name!r}; valid modes are {sorted(modes.modes)}", "mode")
    return modes.modes[name]


def _text(body: dict[str, Any], field: str, default: str | None) -> str:
    value = body.get(field)
    if value is None:
        value = default
    if value is None:
        raise ApiError(400, f"{field} is required", field)
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be a string", field)
    if len(value) > PROMPT_MAX:
        raise ApiError(400, f"{field} is longer than {PROMPT_MAX} characters", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        message = f"{field} is not valid Unicode text: a lone surrogate at character {exc.start}"
        raise ApiError(400, message, field) from None
    return value


def _size(body: dict[str, Any], mode: Mode) -> tuple[int, int]:
    raw = body.get("size")
    if raw is None:
        return mode.default_width, mode.default_height
    try:
        width, height = parse_size(raw)
    except ValueError as exc:
        raise ApiError(400, str(exc), "size") from None
    if width % 8 or height % 8 or width == 0 or height == 0:
        raise ApiError(400, f"size {raw!r}: width and height must be positive multiples of 8", "size")
    if max(width, height) > mode.max_size:
        raise ApiError(400, f"size {raw!r}: mode {mode.name!r} allows at most {mode.max_size} pixels a side", "size")
    if mode.fixed_size and (width, height) != (mode.default_width, mode.default_height):
        only = f"{mode.default_width}x{mode.default_height}"
        raise ApiError(
            400,
            f"size {raw!r}: mode {mode.name!r} runs a model converted for {only} only; send {only} or omit size",
            "size",
        )
    return width, height


def _number(body: dict[str, Any], field: str, default: float, low: float, high: float) -> float:
    value = default if body.get(field) is None else body[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{field} must be a number between {low} and {high}", field)
    if not low <= value <= high:
        raise ApiError(400, f"{field} must be between {low} and {high}, got {value}", field)
    return value


def _seed(body: dict[str, Any], n: int) -> int:
    """The requested seed, or a fresh random one recorded with the job so it can be replayed; the job's
    images take seed, seed + 1, ... so the last must still be a seed."""
    if body.get("seed") is None:
        return secrets.randbelow(SEED_MAX + 2 - n)
    return _integer(body, "seed", 0, 0, SEED_MAX + 1 - n)


def _sampler(body: dict[str, Any], mode: Mode) -> str | None:
    """The project name of the requested sampler (A1111 names accepted), or None for the mode's own."""
    raw = body.get("sampler")
    if raw is None:
        return None
    name = resolve_sampler(raw) if isinstance(raw, str) else None
    if name is None:
        raise ApiError(400, f"unknown sampler {raw!r}; accepted samplers are {accepted_sampler_names()}", "sampler")
    if mode.backend in EDGE_BACKENDS and name not in EDGE_SAMPLERS:
        raise ApiError(
            400, f"mode {mode.name!r} runs on the {mode.backend} backend, whose pipeline runs LCM only", "sampler"
        )
    return name


def _integer(body: dict[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = default if body.get(field) is None else body[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{field} must be a whole number between {low} and {high}", field)
    if not low <= value <= high:
        raise ApiError(400, f"{field} must be between {low} and {high}, got {value}", field)
    return value
