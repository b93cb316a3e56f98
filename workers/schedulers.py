"""Scheduler names used in modes.yaml, mapped to diffusers classes and A1111 sampler names."""

from __future__ import annotations

from typing import Any

SAMPLER_NAMES = {
    "lcm": "LCM",
    "euler": "Euler",
    "euler_a": "Euler a",
    "dpmpp_2m": "DPM++ 2M",
    "ddim": "DDIM",
}


def make_scheduler(name: str, base: Any) -> Any:
    """A scheduler called ``name`` configured from the model's own ``base`` scheduler."""
    import diffusers

    if name == "default":
        return base
    classes = {
        "lcm": (diffusers.LCMScheduler, {}),
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "euler_a": (diffusers.EulerAncestralDiscreteScheduler, {}),
        "dpmpp_2m": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
        "ddim": (diffusers.DDIMScheduler, {}),
    }
    cls, overrides = classes[name]
    return cls.from_config(base.config, **overrides)


def sampler_name(name: str, base: Any) -> str:
    """The sampler as A1111 writes it in PNG metadata (the class name for a model's own)."""
    return SAMPLER_NAMES.get(name) or type(base).__name__.removesuffix("Scheduler")
