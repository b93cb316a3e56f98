"""Read and validate modes.yaml.

Errors name the mode and the field so a person can fix the file.  Relative
paths are resolved against the folder that holds modes.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BACKENDS = ("torch", "onnx", "rknn")
# Backends that run the numpy LCM pipeline (workers/edge/); rknn graphs are converted for one size.
EDGE_BACKENDS = ("onnx", "rknn")
FIXED_SIZE_BACKENDS = ("rknn",)
SCHEDULERS = ("default", "lcm", "euler", "euler_a", "dpmpp_2m", "ddim")
MAX_STEPS = 150
# LCMScheduler refuses more steps than its original 50-step schedule.
LCM_MAX_STEPS = 50
MAX_GUIDANCE = 30.0
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_MODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ModesError(ValueError):
    """modes.yaml is unusable; the message says where and why."""


@dataclass(frozen=True)
class Mode:
    name: str
    model_path: Path
    default_width: int
    default_height: int
    default_steps: int
    default_guidance: float
    negative_prompt: str
    scheduler: str
    backend: str
    max_size: int
    max_steps: int

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": str(self.model_path),
            "default_size": f"{self.default_width}x{self.default_height}",
            "default_steps": self.default_steps,
            "default_guidance": self.default_guidance,
            "negative_prompt": self.negative_prompt,
            "scheduler": self.scheduler,
            "backend": self.backend,
            "max_size": self.max_size,
            "max_steps": self.max_steps,
            "fixed_size": self.fixed_size,
        }

    @property
    def fixed_size(self) -> bool:
        """Whether the mode runs only at default_size (a converted RKNN model has one resolution)."""
        return self.backend in FIXED_SIZE_BACKENDS


@dataclass(frozen=True)
class ModesConfig:
    source: Path
    model_root: Path
    default_mode: str
    modes: dict[str, Mode]


def parse_size(value: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)``; raises ValueError with a readable message."""
    match = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"size must look like '512x512' (WIDTHxHEIGHT), got {value!r}")
    return int(match.group(1)), int(match.group(2))


def load_modes(path: Path) -> ModesConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ModesError(f"{path}: file not found; set MODES_FILE or create it from modes.yaml.example") from None
    except yaml.YAMLError as exc:
        raise ModesError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ModesError(f"{path}: expected a mapping with model_root, default_mode and modes")
    root = (path.parent / str(data.get("model_root", "."))).resolve()
    raw_modes = data.get("modes")
    if not isinstance(raw_modes, dict) or not raw_modes:
        raise ModesError(f"{path}: 'modes' must map at least one mode name to its settings")
    modes = {name: _parse_mode(str(name), spec, root) for name, spec in raw_modes.items()}
    default_mode = str(data.get("default_mode") or next(iter(modes)))
    if default_mode not in modes:
        raise ModesError(f"{path}: default_mode {default_mode!r} is not one of {sorted(modes)}")
    return ModesConfig(source=path, model_root=root, default_mode=default_mode, modes=modes)


def _parse_mode(name: str, spec: Any, root: Path) -> Mode:
    where = f"mode {name!r}"
    if not _MODE_NAME.match(name):
        raise ModesError(f"{where}: names use letters, digits, '-' and '_' (at most 64)")
    if not isinstance(spec, dict):
        raise ModesError(f"{where}: expected a mapping of settings")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise ModesError(f"{where}: 'model' must name a model under model_root")
    model_path = (root / model).resolve()
    if not model_path.is_relative_to(root):
        raise ModesError(f"{where}: 'model' {model!r} escapes model_root {root}")
    try:
        width, height = parse_size(str(spec.get("default_size", "512x512")))
    except ValueError as exc:
        raise ModesError(f"{where}: 'default_size': {exc}") from None
    scheduler = str(spec.get("scheduler", "default"))
    if scheduler not in SCHEDULERS:
        raise ModesError(f"{where}: 'scheduler' {scheduler!r} is not one of {list(SCHEDULERS)}")
    step_cap = LCM_MAX_STEPS if scheduler == "lcm" else MAX_STEPS
    max_size = _number(spec, "max_size", 1024, int, where, 8, 4096)
    max_steps = _number(spec, "max_steps", step_cap, int, where, 1, step_cap)
    if width % 8 or height % 8 or max(width, height) > max_size:
        raise ModesError(f"{where}: 'default_size' must be multiples of 8 no larger than max_size {max_size}")
    backend = str(spec.get("backend", "torch"))
    if backend not in BACKENDS:
        raise ModesError(f"{where}: 'backend' {backend!r} is not one of {list(BACKENDS)}")
    if backend in EDGE_BACKENDS and scheduler != "lcm":
        raise ModesError(f"{where}: backend {backend!r} runs the LCM pipeline only; set 'scheduler: lcm'")
    return Mode(
        name=name,
        model_path=model_path,
        default_width=width,
        default_height=height,
        default_steps=_number(spec, "default_steps", 20, int, where, 1, max_steps),
        default_guidance=_number(spec, "default_guidance", 7.5, float, where, 0.0, MAX_GUIDANCE),
        negative_prompt=str(spec.get("negative_prompt", "")),
        scheduler=scheduler,
        backend=backend,
        max_size=max_size,
        max_steps=max_steps,
    )


def _number(spec: dict, field: str, default: Any, kind: type, where: str, low: float, high: float) -> Any:
    value = spec.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ModesError(f"{where}: {field!r} must be {'a whole number' if kind is int else 'a number'}, got {value!r}")
    if not low <= value <= high:
        raise ModesError(f"{where}: {field!r} must be between {low} and {high}, got {value}")
    return kind(value)
