"""The typed message a generation job carries from the API to a worker.

The API resolves the mode fully (model path, scheduler, defaults applied), so a
worker needs the model files but not the API's modes.yaml.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jobs.superres import SuperResOptions


@dataclass(frozen=True)
class ResolvedMode:
    name: str
    model_path: str
    scheduler: str
    backend: str


@dataclass(frozen=True)
class GenerateParams:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int


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
            mode=ResolvedMode(**data["mode"]),
            params=GenerateParams(**data["params"]),
            superres=SuperResOptions(**data["superres"]) if data.get("superres") else None,
        )
