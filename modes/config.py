"""Read and validate modes.yaml.

Errors name the mode and the field so a person can fix the file.  Relative
paths are resolved against the folder that holds modes.yaml.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jobs.wording import choices
from modes.controlnets import check_controlnet_family
from modes.families import is_inpainting
from modes.lora_families import LoraMismatch, check_lora, model_family

BACKENDS = ("torch", "onnx", "rknn")
# Backends that run the numpy LCM pipeline (workers/edge/); rknn graphs are converted for one size.
EDGE_BACKENDS = ("onnx", "rknn")
FIXED_SIZE_BACKENDS = ("rknn",)
SCHEDULERS = ("default", "lcm", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim")
MAX_STEPS = 150
# LCMScheduler refuses more steps than its original 50-step schedule.
LCM_MAX_STEPS = 50
MAX_GUIDANCE = 30.0
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_MODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ADAPTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ModesError(ValueError):
    """modes.yaml is unusable; the message says where and why."""


@dataclass(frozen=True)
class Lora:
    path: Path
    strength: float
    adapter_name: str
    file: str = ""  # as modes.yaml names it, relative to lora_root: what a job message carries

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "strength": self.strength, "adapter_name": self.adapter_name}


@dataclass(frozen=True)
class ControlNet:
    """A ControlNet a mode offers: jobs name it, and its scale is their default conditioning scale."""

    name: str
    path: Path
    scale: float
    file: str = ""  # as modes.yaml names it, relative to controlnet_root: what a job message carries

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "scale": self.scale}


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
    loras: tuple[Lora, ...] = ()
    model: str = ""  # as modes.yaml names it, relative to model_root: what a job message carries
    # The model is an inpainting model (9 input channels, read from its files where they are): inpainting jobs only.
    inpainting: bool = False
    controlnets: tuple[ControlNet, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": str(self.model_path),
            "loras": [lora.as_dict() for lora in self.loras],
            "default_size": f"{self.default_width}x{self.default_height}",
            "default_steps": self.default_steps,
            "default_guidance": self.default_guidance,
            "negative_prompt": self.negative_prompt,
            "scheduler": self.scheduler,
            "backend": self.backend,
            "max_size": self.max_size,
            "max_steps": self.max_steps,
            "fixed_size": self.fixed_size,
            "inpainting": self.inpainting,
            "controlnets": [controlnet.as_dict() for controlnet in self.controlnets],
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
    text: str = field(default="", compare=False)
    lora_root: Path | None = None  # None: model_root
    controlnet_root: Path | None = None  # None: model_root

    @property
    def digest(self) -> str:
        """Identifies the file content the config was parsed from."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def parse_size(value: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)``; raises ValueError with a readable message."""
    match = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"size must look like '512x512' (WIDTHxHEIGHT), got {value!r}")
    return int(match.group(1)), int(match.group(2))


def load_modes(path: Path) -> ModesConfig:
    """Read and validate the modes file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModesError(f"{path}: file not found; set MODES_FILE or create it from modes.yaml.example") from None
    except OSError as exc:
        raise ModesError(f"{path}: cannot read it: {exc}") from None
    config = parse_modes(text, path)
    check_lora_families(config)
    check_controlnet_families(config)
    return config


def parse_modes(text: str, source: Path) -> ModesConfig:
    """Validate modes.yaml ``text``; relative roots resolve against ``source``'s folder."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModesError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ModesError(f"{source}: expected a mapping with model_root, default_mode and modes")
    root = _root(source, data, "model_root", ".")
    lora_root = _root(source, data, "lora_root", str(root))
    controlnet_root = _root(source, data, "controlnet_root", str(root))
    raw_modes = data.get("modes")
    if not isinstance(raw_modes, dict) or not raw_modes:
        raise ModesError(f"{source}: 'modes' must map at least one mode name to its settings")
    modes = {
        str(name): _parse_mode(str(name), spec, root, lora_root, controlnet_root) for name, spec in raw_modes.items()
    }
    default_mode = str(data.get("default_mode") or next(iter(modes)))
    if default_mode not in modes:
        raise ModesError(f"{source}: default_mode {default_mode!r} is not one of {choices(sorted(modes))}")
    return ModesConfig(
        source=source,
        model_root=root,
        default_mode=default_mode,
        modes=modes,
        text=text,
        lora_root=lora_root,
        controlnet_root=controlnet_root,
    )


def _root(source: Path, data: dict, key: str, default: str) -> Path:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ModesError(f"{source}: {key!r} must be a folder path")
    return (source.parent / value).resolve()


def resolve_under(root: Path, relative: str, where: str, what: str) -> Path:
    """``root/relative`` with symlinks resolved, refused if it leaves ``root``."""
    if Path(relative).is_absolute():
        raise ModesError(f"{where}: {what} {relative!r} must be relative to {root}, not absolute")
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ModesError(f"{where}: {what} {relative!r} escapes {root} ('..' or a symlink leading outside)")
    if path.is_dir():
        _check_links(root, path, where, what, set())
    return path


def _check_links(root: Path, folder: Path, where: str, what: str, seen: set[Path]) -> None:
    """Refuse a model folder any of whose files or folders (a component's ``unet``, say) links outside ``root``;
    a link to a folder inside ``root`` is followed once and checked the same way."""
    seen.add(folder)
    for entry in folder.iterdir():
        target = entry.resolve()
        if entry.is_symlink() and not target.is_relative_to(root):
            inside = entry.relative_to(root)
            raise ModesError(f"{where}: {what} holds {str(inside)!r}, a symlink to {target}, outside {root}")
        if target.is_dir() and target not in seen:
            _check_links(root, target, where, what, seen)


def _parse_loras(spec: Any, lora_root: Path, where: str) -> tuple[Lora, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise ModesError(f"{where}: 'loras' must be a list of files or of {{path, strength, adapter_name}}")
    loras = []
    for index, item in enumerate(spec):
        at = f"{where}: loras[{index}]"
        entry = {"path": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise ModesError(f"{at}: give a file name or a mapping with 'path'")
        unknown = sorted(set(entry) - {"path", "strength", "adapter_name"})
        if unknown:
            raise ModesError(f"{at}: unknown key {unknown[0]!r}; use path, strength, adapter_name")
        path = resolve_under(lora_root, entry["path"], at, "path")
        stem = re.sub(r"\W", "_", Path(entry["path"]).stem)
        name = str(entry.get("adapter_name") or (stem if stem[:1].isalpha() else f"lora_{stem}"))
        if not _ADAPTER_NAME.match(name):
            raise ModesError(f"{at}: 'adapter_name' {name!r} must be letters, digits and '_', starting with a letter")
        strength = _number(entry, "strength", 1.0, float, at, -10.0, 10.0)
        loras.append(Lora(path, strength, name, entry["path"]))
    names = [lora.adapter_name for lora in loras]
    if len(set(names)) != len(names):
        raise ModesError(f"{where}: adapter names must be unique within a mode, got {names}")
    return tuple(loras)


def _parse_mode(name: str, spec: Any, root: Path, lora_root: Path, controlnet_root: Path) -> Mode:
    where = f"mode {name!r}"
    if not _MODE_NAME.match(name):
        raise ModesError(f"{where}: names use letters, digits, '-' and '_' (at most 64)")
    if not isinstance(spec, dict):
        raise ModesError(f"{where}: expected a mapping of settings")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise ModesError(f"{where}: 'model' must name a model under model_root")
    model_path = resolve_under(root, model, where, "'model'")
    try:
        width, height = parse_size(str(spec.get("default_size", "512x512")))
    except ValueError as exc:
        raise ModesError(f"{where}: 'default_size': {exc}") from None
    scheduler = str(spec.get("scheduler", "default"))
    if scheduler not in SCHEDULERS:
        raise ModesError(f"{where}: 'scheduler' {scheduler!r} is not one of {choices(SCHEDULERS)}")
    step_cap = LCM_MAX_STEPS if scheduler == "lcm" else MAX_STEPS
    max_size = _number(spec, "max_size", 1024, int, where, 8, 4096)
    max_steps = _number(spec, "max_steps", step_cap, int, where, 1, step_cap)
    if width % 8 or height % 8 or max(width, height) > max_size:
        raise ModesError(f"{where}: 'default_size' must be multiples of 8 no larger than max_size {max_size}")
    backend = str(spec.get("backend", "torch"))
    if backend not in BACKENDS:
        raise ModesError(f"{where}: 'backend' {backend!r} is not one of {choices(BACKENDS)}")
    if backend in EDGE_BACKENDS and scheduler != "lcm":
        raise ModesError(f"{where}: backend {backend!r} runs the LCM pipeline only; set 'scheduler: lcm'")
    if backend in EDGE_BACKENDS and spec.get("loras"):
        raise ModesError(f"{where}: backend {backend!r} cannot apply LoRAs; fuse them into the model before export")
    if backend in EDGE_BACKENDS and spec.get("controlnets"):
        raise ModesError(
            f"{where}: backend {backend!r} cannot run ControlNets (its exported UNet has no control inputs)"
        )
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
        loras=_parse_loras(spec.get("loras"), lora_root, where),
        model=model,
        inpainting=backend == "torch" and is_inpainting(model_path),
        controlnets=_parse_controlnets(spec.get("controlnets"), controlnet_root, where),
    )


def _parse_controlnets(spec: Any, root: Path, where: str) -> tuple[ControlNet, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise ModesError(f"{where}: 'controlnets' must be a list of files or folders, or of {{path, name, scale}}")
    controlnets = []
    for index, item in enumerate(spec):
        at = f"{where}: controlnets[{index}]"
        entry = {"path": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
            raise ModesError(f"{at}: give a file or folder name or a mapping with 'path'")
        unknown = sorted(set(entry) - {"path", "name", "scale"})
        if unknown:
            raise ModesError(f"{at}: unknown key {unknown[0]!r}; use path, name, scale")
        path = resolve_under(root, entry["path"], at, "path")
        name = str(entry.get("name") or Path(entry["path"]).name.removesuffix(".safetensors"))
        if not _MODE_NAME.match(name):
            raise ModesError(f"{at}: 'name' {name!r} must be letters, digits, '-' and '_'")
        scale = _number(entry, "scale", 1.0, float, at, 0.0, 2.0)
        controlnets.append(ControlNet(name, path, scale, entry["path"]))
    names = [controlnet.name for controlnet in controlnets]
    if len(set(names)) != len(names):
        raise ModesError(f"{where}: ControlNet names must be unique within a mode, got {names}")
    return tuple(controlnets)


def check_controlnet_families(config: ModesConfig) -> None:
    """Refuse a ControlNet that is not one, or is made for another family than its mode's model, when
    both are here (as check_lora_families)."""
    for mode in config.modes.values():
        family = model_family(mode.model_path) if mode.controlnets and mode.model_path.exists() else None
        for controlnet in mode.controlnets:
            if family is not None and controlnet.path.exists():
                try:
                    check_controlnet_family(controlnet.path, family)
                except ValueError as exc:
                    raise ModesError(f"mode {mode.name!r}: controlnet {controlnet.name!r}: {exc}") from None


def check_lora_families(config: ModesConfig) -> None:
    """Refuse a LoRA made for another family than its mode's model when both files are here.

    Run where the modes file is read (a reload), not where published text is parsed: another
    host's files may differ, and its worker refuses such a LoRA when it loads the mode.
    Reads headers and configs only.
    """
    for mode in config.modes.values():
        family = model_family(mode.model_path) if mode.loras and mode.model_path.exists() else None
        for lora in mode.loras:
            if family is not None and lora.path.is_file():
                try:
                    check_lora(lora.path, family)
                except LoraMismatch as exc:
                    raise ModesError(f"mode {mode.name!r}: {exc}") from None


def _number(spec: dict, field: str, default: Any, kind: type, where: str, low: float, high: float) -> Any:
    value = spec.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ModesError(f"{where}: {field!r} must be {'a whole number' if kind is int else 'a number'}, got {value!r}")
    if not low <= value <= high:
        raise ModesError(f"{where}: {field!r} must be between {low} and {high}, got {value}")
    return kind(value)
