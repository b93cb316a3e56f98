"""The ControlNet extension's request shape (``alwayson_scripts.controlnet.args``) as native ControlNet fields.

A1111 clients such as webuiapi send ControlNet units there; the service runs one enabled unit
through the mode's ControlNets (api/control_fields.py checks the rest against the mode).  Its
``model`` names one of the mode's ControlNets, with or without A1111's `` [hash]`` suffix;
``module`` is the preprocessor, ``none`` or ``canny`` here.
"""

from __future__ import annotations

import re
from typing import Any

from api.errors import ApiError

FIELD = "alwayson_scripts"
PREPROCESSORS = {"none": "none", "canny": "canny"}
_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]+\]$")


def is_controlnet(script: str) -> bool:
    return script.lower() == "controlnet"


def control_fields(scripts: dict[str, Any] | None) -> dict[str, Any]:
    """The native fields of the one enabled ControlNet unit in ``scripts``; none when there is none."""
    spec = next((value for name, value in (scripts or {}).items() if is_controlnet(name)), None)
    args = spec.get("args", []) if isinstance(spec, dict) else spec or []
    units = [unit for unit in args if isinstance(unit, dict) and unit.get("enabled", True)]
    if not units:
        return {}
    if len(units) > 1:
        raise ApiError(400, f"{FIELD}.controlnet: one enabled unit at a time here (got {len(units)})", FIELD)
    unit = units[0]
    image = unit.get("image") or unit.get("input_image")
    if not isinstance(image, str) or not image:
        raise ApiError(400, f"{FIELD}.controlnet: the unit has no image (base64)", FIELD)
    module = str(unit.get("module") or "none").lower()
    if module not in PREPROCESSORS:
        raise ApiError(
            400, f"{FIELD}.controlnet: module {module} is not available; use one of {', '.join(PREPROCESSORS)}", FIELD
        )
    return {
        "control_image": image,
        "preprocessor": PREPROCESSORS[module],
        "controlnet": _name(unit.get("model")),
        "controlnet_conditioning_scale": unit.get("weight"),
        "control_guidance_start": unit.get("guidance_start"),
        "control_guidance_end": unit.get("guidance_end"),
    }


def _name(model: Any) -> str | None:
    """The mode's ControlNet a unit names; None (the mode's first) for A1111's "None" or nothing."""
    if not isinstance(model, str) or model.strip() in ("", "None"):
        return None
    return _HASH_SUFFIX.sub("", model.strip())
