"""What every generation backend offers the task layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from jobs.messages import GenerateJob, ResolvedMode

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

    def cached_modes(self) -> set[str]:
        """Modes whose model this backend holds in host RAM (the loaded mode's, for backends without a cache)."""
        ...

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        """Load the mode (model and LoRAs) unless loaded; return the seconds it took."""
        ...

    def generate(self, job: GenerateJob, on_step: StepCallback, init_image: Image.Image | None = None) -> Generated:
        """Run ``job``; with ``init_image`` (the job's input image, decoded) as img2img."""
        ...

    def memory_report(self) -> dict[str, Any]:
        """Device memory and what the backend holds, for heartbeats and /api/vram."""
        ...


class OneModeBackend:
    """What a backend that holds one mode at a time reports to the heartbeat and the router:
    that mode, loaded, and nothing else in memory."""

    def __init__(self) -> None:
        self._mode: str | None = None

    @property
    def loaded_mode(self) -> str | None:
        return self._mode

    def cached_modes(self) -> set[str]:
        return {self._mode} if self._mode else set()
