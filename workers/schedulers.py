"""Scheduler names used in modes.yaml and job requests, mapped to diffusers classes and A1111 sampler names."""

from __future__ import annotations

from typing import Any

from jobs.samplers import A1111_NAMES

SAMPLER_NAMES = A1111_NAMES


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
        "dpmpp_2m_karras": (
            diffusers.DPMSolverMultistepScheduler,
            {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
        ),
        "ddim": (diffusers.DDIMScheduler, {}),
    }
    cls, overrides = classes[name]
    return cls.from_config(base.config, **overrides)


def sampler_name(name: str, base: Any) -> str:
    """The sampler as A1111 writes it in PNG metadata (the class name for a model's own)."""
    return SAMPLER_NAMES.get(name) or type(base).__name__.removesuffix("Scheduler")
