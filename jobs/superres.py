"""What the API and the super-resolution workers share about an SR job: queue, task, keys, message.

An SR job's input image travels through the object store (``uploads/<id>``, or the
generated image of a generation job with post-generation SR), never through the
broker: the message carries only its key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SUPERRES_QUEUE = "superres"
SUPERRES_TASK = "dreamlab.superres"
SUPERRES_KIND = "superres"
FORMATS = {"png": "image/png", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "jpeg": "jpg"}
MAX_MAGNITUDE = 3
UPSCALER = "Sub-Pixel CNN"  # the upscaler's name in infotexts and A1111's upscaler listing


def upload_key(job_id: str) -> str:
    return f"uploads/{job_id}"


def generated_key(job_id: str) -> str:
    """Where a generation job with post-generation SR leaves its image for the SR stage."""
    return f"stages/{job_id}.png"


def output_key(job_id: str, out_format: str) -> str:
    return f"jobs/{job_id}.{EXTENSIONS[out_format]}"


def output_size(width: int, height: int, factor: int, magnitude: int) -> tuple[int, int]:
    return width * factor**magnitude, height * factor**magnitude


def pixel_limit_message(width: int, height: int, factor: int, magnitude: int, max_pixels: int) -> str | None:
    """Why this upscale is refused (it would exceed SR_MAX_PIXELS), or None when it is allowed."""
    out_w, out_h = output_size(width, height, factor, magnitude)
    if out_w * out_h <= max_pixels:
        return None
    return (
        f"magnitude {magnitude} would make {width}x{height} into {out_w}x{out_h} "
        f"({out_w * out_h} pixels), over SR_MAX_PIXELS={max_pixels}; use a smaller image or magnitude"
    )


@dataclass(frozen=True)
class SuperResOptions:
    magnitude: int  # passes of x``factor`` each
    out_format: str  # "png" or "jpeg"
    quality: int  # JPEG quality, 1..100


@dataclass(frozen=True)
class SuperResJob:
    job_id: str
    input_key: str
    options: SuperResOptions
    # The generation result a post-generation SR stage completes (seed, mode, sampler...); None when standalone.
    base_result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuperResJob:
        return cls(
            job_id=data["job_id"],
            input_key=data["input_key"],
            options=SuperResOptions(**data["options"]),
            base_result=data.get("base_result"),
        )
