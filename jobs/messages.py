"""The typed message a generation job carries from the API to a worker.

The API resolves the mode fully (model path, scheduler, defaults applied), so a
worker needs the model files but not the API's modes.yaml.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jobs.superres import SuperResOptions


@dataclass(frozen=True)
class LoraRef:
    path: str
    strength: float
    adapter_name: str


@dataclass(frozen=True)
class ResolvedMode:
    name: str
    model_path: str
    scheduler: str
    backend: str
    loras: tuple[LoraRef, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResolvedMode:
        loras = tuple(LoraRef(**lora) for lora in data.get("loras", ()))
        return cls(**{**data, "loras": loras})


@dataclass(frozen=True)
class GenerateParams:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    # img2img: the object-store key of the init image (a PNG), and how far to move away from it (0-1].
    init_image: str | None = None
    strength: float | None = None
    # inpainting (with init_image): the object-store key of the mask PNG (white = repaint) and its blur in pixels.
    mask_image: str | None = None
    mask_blur: int | None = None
    # ControlNet: the control image's object-store key, the ControlNet (its name in the mode and its file or
    # folder), how strongly and over which fraction of the steps it steers, and the preprocessor (none, canny).
    control_image: str | None = None
    controlnet: str | None = None
    controlnet_path: str | None = None
    controlnet_conditioning_scale: float | None = None
    control_guidance_start: float | None = None
    control_guidance_end: float | None = None
    preprocessor: str | None = None
    # Scheduling: a job with priority p goes before jobs of its mode submitted up to
    # p x PRIORITY_AGING seconds before it (jobs/records.py), so nothing waits forever.
    priority: int = 0

    def batch_key(self) -> tuple | None:
        """Jobs with equal keys can run as one pipeline call (each with its own prompt and seed)."""
        if self.init_image is not None or self.control_image is not None:
            return None  # image jobs run one at a time
        return (self.width, self.height, self.steps, self.guidance, self.negative_prompt)


@dataclass(frozen=True)
class GenerateJob:
    job_id: str
    mode: ResolvedMode
    params: GenerateParams
    superres: SuperResOptions | None = None  # post-generation super-resolution, run on an SR worker

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateJob:
        return cls(
            job_id=data["job_id"],
            mode=ResolvedMode.from_dict(data["mode"]),
            params=GenerateParams(**data["params"]),
            superres=SuperResOptions(**data["superres"]) if data.get("superres") else None,
        )


@dataclass(frozen=True)
class SwitchJob:
    """Load a mode on the worker that takes the job, ahead of the generation jobs queued after it."""

    job_id: str
    mode: ResolvedMode

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwitchJob:
        return cls(job_id=data["job_id"], mode=ResolvedMode.from_dict(data["mode"]))


@dataclass(frozen=True)
class CustomJob:
    """Run the registered handler ``handler`` on JSON ``args`` (never code from the network)."""

    job_id: str
    handler: str
    args: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomJob:
        return cls(job_id=data["job_id"], handler=data["handler"], args=data["args"])
