"""What every generation backend offers the task layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from jobs.messages import GenerateJob

StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Generated:
    image: Image.Image
    sampler: str


class Backend(Protocol):
    name: str
    serves: str  # the mode backend whose queues this backend consumes

    @property
    def loaded_mode(self) -> str | None: ...

    def generate(self, job: GenerateJob, on_step: StepCallback, init_image: Image.Image | None = None) -> Generated:
        """Run ``job``; with ``init_image`` (the job's input image, decoded) as img2img."""
        ...
