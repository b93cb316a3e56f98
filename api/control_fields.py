"""The ControlNet fields of a generation request, checked against the mode's ControlNets.

``control_image`` is a PNG checked and stored as ``init_image`` is (api/init_image.py);
the other fields need it.  Only torch modes run ControlNets: an ONNX or RKNN mode runs an
exported UNet that has no control inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from api.errors import ApiError
from api.init_image import InitImage
from jobs.wording import choices
from modes import Mode

if TYPE_CHECKING:
    from api.schemas.generation import JobRequest

FIELDS = (
    "control_image",
    "controlnet",
    "controlnet_conditioning_scale",
    "control_guidance_start",
    "control_guidance_end",
    "preprocessor",
)
MAX_SCALE = 2.0


def parse_control(request: JobRequest, mode: Mode, init: InitImage | None) -> tuple[dict[str, Any], InitImage | None]:
    """The GenerateParams fields of a ControlNet job (none without ``control_image``) and its image.
    The fields' types and ranges are the request model's; this checks them against the mode."""
    image = request.control_image
    if image is None:
        given = next((field for field in FIELDS if getattr(request, field) is not None), None)
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
    controlnet = _controlnet(request.controlnet, mode)
    start = 0.0 if request.control_guidance_start is None else request.control_guidance_start
    end = 1.0 if request.control_guidance_end is None else request.control_guidance_end
    if start >= end:
        raise ApiError(
            400, f"control_guidance_start {start} must be below control_guidance_end {end}", "control_guidance_start"
        )
    scale = request.controlnet_conditioning_scale
    return {
        "control_image": image.key,
        "controlnet": controlnet.name,
        "controlnet_path": controlnet.file,  # relative to the ControlNet root: each worker resolves it on its host
        "controlnet_conditioning_scale": float(controlnet.scale if scale is None else scale),
        "control_guidance_start": start,
        "control_guidance_end": end,
        "preprocessor": request.preprocessor or "none",
    }, image


def _controlnet(name: str | None, mode: Mode) -> Any:
    names = {controlnet.name: controlnet for controlnet in mode.controlnets}
    if name is None:
        return mode.controlnets[0]
    if name not in names:
        raise ApiError(
            400, f"controlnet {name!r} is not one of mode {mode.name!r}'s: {choices(sorted(names))}", "controlnet"
        )
    return names[name]
