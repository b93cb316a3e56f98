"""Where a worker finds a mode's files: model and LoRA paths resolve on the worker host.

A job message names the mode's model and LoRAs as modes.yaml does, relative to the
model root and the LoRA root (``message``), and a ControlNet job's ControlNet relative to
the ControlNet root (api/control_fields.py).  Each worker resolves them against its own
roots (``MODEL_ROOT`` / ``LORA_ROOT`` / ``CONTROLNET_ROOT``, else the fleet config's), with
modes.yaml's path-safety checks (``resolve_under``: nothing absolute, no '..' or symlink
leading outside the root), so a GPU box and an RK3588 board can keep the same models in
different places.  ``lacking`` tells which modes' files a worker host does not have:
its heartbeat reports them and its router never serves them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from jobs.messages import LoraRef, ResolvedMode
from modes.config import Mode, ModesConfig, ModesError, resolve_under


def message(mode: Mode) -> ResolvedMode:
    """The mode as a job message carries it: names relative to the roots, no reference to modes.yaml."""
    return ResolvedMode(
        name=mode.name,
        model_path=mode.model,
        scheduler=mode.scheduler,
        backend=mode.backend,
        loras=tuple(LoraRef(lora.file, lora.strength, lora.adapter_name) for lora in mode.loras),
    )


@dataclass(frozen=True)
class ModelRoots:
    """This worker host's roots; an unset one is the fleet config's (a single host shares its folders)."""

    fleet: Callable[[], ModesConfig]
    model_root: Path | None = None
    lora_root: Path | None = None
    controlnet_root: Path | None = None

    @classmethod
    def from_env(cls, fleet: Callable[[], ModesConfig], env: Mapping[str, str] | None = None) -> ModelRoots:
        """MODEL_ROOT, and LORA_ROOT and CONTROLNET_ROOT (each MODEL_ROOT when only that is set)."""
        env = os.environ if env is None else env
        model = env.get("MODEL_ROOT", "").strip()
        lora = env.get("LORA_ROOT", "").strip() or model
        controlnet = env.get("CONTROLNET_ROOT", "").strip() or model
        return cls(fleet, *(Path(root).resolve() if root else None for root in (model, lora, controlnet)))

    def roots(self) -> tuple[Path, Path]:
        """The model root and the LoRA root this host resolves names against."""
        if self.model_root and self.lora_root:
            return self.model_root, self.lora_root
        config = self.fleet()
        model = self.model_root or config.model_root
        return model, self.lora_root or config.lora_root or model

    def locate(self, mode: ResolvedMode) -> ResolvedMode:
        """``mode`` with its paths on this host; ModesError when one is unsafe or missing here."""
        model_root, lora_root = self.roots()
        where = f"mode {mode.name!r}"
        model = _existing(model_root, mode.model_path, where, "model")
        loras = tuple(replace(lora, path=str(_existing(lora_root, lora.path, where, "LoRA"))) for lora in mode.loras)
        return replace(mode, model_path=str(model), loras=loras)

    def locate_controlnet(self, mode: str, name: str) -> Path:
        """The ControlNet a job of ``mode`` names, on this host; ModesError when it is unsafe or missing here."""
        root = self.controlnet_root
        if root is None:
            config = self.fleet()
            root = config.controlnet_root or self.model_root or config.model_root
        return _existing(root, name, f"mode {mode!r}", "ControlNet")

    def lacking(self, modes: list[Mode]) -> dict[str, str]:
        """Mode name -> why this host cannot run it, for the ``modes`` whose files it lacks."""
        missing = {}
        for mode in modes:
            try:
                self.locate(message(mode))
            except ModesError as exc:
                missing[mode.name] = str(exc)
        return missing


def _existing(root: Path, name: str, where: str, what: str) -> Path:
    path = resolve_under(root, name, where, what)
    if not path.exists():
        raise ModesError(f"{where}: {what} {name!r} is not under {root} on this worker host")
    return path
