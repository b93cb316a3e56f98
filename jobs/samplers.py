"""The samplers a job may ask for: the project's scheduler names and AUTOMATIC1111's names for them.

The API resolves a request's ``sampler`` (either spelling, any case) to the project name that
travels in the job; the worker builds that scheduler (workers/schedulers.py) and writes the
A1111 name into the image's infotext.
"""

from __future__ import annotations

# Project name -> the name A1111 shows (and clients such as webuiapi send as sampler_name).
A1111_NAMES = {
    "euler_a": "Euler a",
    "euler": "Euler",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "ddim": "DDIM",
    "lcm": "LCM",
}
# A1111 1.9+ sends the noise schedule apart: sampler_name "DPM++ 2M" with scheduler "Karras".
SCHEDULE_SUFFIXES = {"karras": " Karras"}
EDGE_SAMPLERS = ("lcm",)  # the numpy LCM pipeline of the onnx and rknn backends runs no other


def resolve_sampler(name: str) -> str | None:
    """The project name of ``name`` (a project or A1111 sampler name, any case), or None when unknown."""
    wanted = name.strip().lower()
    for project, a1111 in A1111_NAMES.items():
        if wanted in (project, a1111.lower()):
            return project
    return None


def accepted_sampler_names() -> list[str]:
    """Every spelling ``resolve_sampler`` accepts, A1111's first: for error messages and listings."""
    return [*A1111_NAMES.values(), *A1111_NAMES]


def a1111_name(project: str) -> str:
    return A1111_NAMES[project]
