"""The typed message a generation job carries from the API to a worker.

The API resolves the mode fully (scheduler, LoRA strengths, defaults applied), so a
worker needs the model files but not the API's modes.yaml.  Model and LoRA paths are
named relative to the model and LoRA roots, and a ControlNet relative to the ControlNet root;
each worker resolves them against its own (modes/roots.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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
    # folder, relative to the ControlNet root as the model's is to the model root: the worker resolves it), how
    # strongly and over which fraction of the steps it steers, and the preprocessor (none, canny).
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
    # Several images (A1111's batch_size x n_iter): image i has seed + i, so each one is reproduced alone.
    n: int = 1
    # A scheduler in place of the mode's (a project name, jobs/samplers.py); None runs the mode's own.
    sampler: str | None = None

    def batch_key(self) -> tuple | None:
        """Jobs with equal keys can run as one pipeline call (each with its own prompt and seed); a job
        of several images is a batch of its own (tasks/runner.py), so it takes no companions."""
        if self.init_image is not None or self.control_image is not None or self.n > 1:
            return None  # image jobs run one at a time
        return (self.width, self.height, self.steps, self.guidance, self.negative_prompt, self.sampler)


@dataclass(frozen=True)
class GenerateJob:
    job_id: str
    mode: ResolvedMode
    params: GenerateParams
    superres: SuperResOptions | None = None  # post-generation super-resolution, run on an SR worker

    @property
    def scheduler(self) -> str:
        """The scheduler this job runs: its own sampler, else its mode's."""
        return self.params.sampler or self.mode.scheduler

    def images(self) -> list[GenerateJob]:
        """One single-image job per image of this job, with seeds seed, seed + 1, ..."""
        p = self.params
        return [replace(self, params=replace(p, seed=p.seed + i, n=1)) for i in range(p.n)]

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
