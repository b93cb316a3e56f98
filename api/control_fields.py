"""The ControlNet fields of a generation request, checked against the mode's ControlNets.

``control_image`` is a PNG checked and stored as ``init_image`` is (api/init_image.py);
the other fields need it.  Only torch modes run ControlNets: an ONNX or RKNN mode runs an
exported UNet that has no control inputs.
"""

from __future__ import annotations

from typing import Any

from api.errors import ApiError
from api.init_image import InitImage, parse_init_image
from modes import Mode

FIELDS = (
    "control_image",
    "controlnet",
    "controlnet_conditioning_scale",
    "control_guidance_start",
    "control_guidance_end",
    "preprocessor",
)
PREPROCESSORS = ("none", "canny")
MAX_SCALE = 2.0


def parse_control(body: dict[str, Any], mode: Mode, init: InitImage | None) -> tuple[dict[str, Any], InitImage | None]:
    """The GenerateParams fields of a ControlNet job (none without ``control_image``) and its image."""
    if body.get("control_image") is None:
        given = next((field for field in FIELDS if body.get(field) is not None), None)
        if given:
            raise ApiError(400, f"{given} applies to ControlNet jobs only: send it with a control_image", given)
        return {}, None
    if mode.backend != "torch":
        raise ApiError(
            400,
            f"mode {mode.name!r} runs on the {mode.backend} backend, which cannot run a ControlNet (its exported "
            "UNet has no control inputs); use a torch mode",
            "control_image",
        )
    if init is not None:
        raise ApiError(400, "control_image runs text-to-image: send it without init_image", "control_image")
    if not mode.controlnets:
        raise ApiError(
            400, f"mode {mode.name!r} has no ControlNet; list one under its 'controlnets' in modes.yaml", "controlnet"
        )
    controlnet = _controlnet(body, mode)
    start = _fraction(body, "control_guidance_start", 0.0)
    end = _fraction(body, "control_guidance_end", 1.0)
    if start >= end:
        raise ApiError(
            400, f"control_guidance_start {start} must be below control_guidance_end {end}", "control_guidance_start"
        )
    preprocessor = body.get("preprocessor") or "none"
    if preprocessor not in PREPROCESSORS:
        raise ApiError(400, f"preprocessor must be one of {list(PREPROCESSORS)}, got {preprocessor!r}", "preprocessor")
    image = parse_init_image(body["control_image"], "control_image")
    scale = body.get("controlnet_conditioning_scale")
    scale = controlnet.scale if scale is None else _number(scale, "controlnet_conditioning_scale", MAX_SCALE)
    return {
        "control_image": image.key,
        "controlnet": controlnet.name,
        "controlnet_path": str(controlnet.path),
        "controlnet_conditioning_scale": float(scale),
        "control_guidance_start": start,
        "control_guidance_end": end,
        "preprocessor": preprocessor,
    }, image


def _controlnet(body: dict[str, Any], mode: Mode) -> Any:
    names = {controlnet.name: controlnet for controlnet in mode.controlnets}
    name = body.get("controlnet")
    if name is None:
        return mode.controlnets[0]
    if name not in names:
        raise ApiError(400, f"controlnet {name!r} is not one of mode {mode.name!r}'s: {sorted(names)}", "controlnet")
    return names[name]


def _fraction(body: dict[str, Any], field: str, default: float) -> float:
    value = body.get(field)
    return default if value is None else float(_number(value, field, 1.0))


def _number(value: Any, field: str, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise ApiError(400, f"{field} must be a number between 0 and {high}, got {value!r}", field)
    return value
