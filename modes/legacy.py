"""The original Dream Lab's environment variables as a one-mode config, used when no modes.yaml exists."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from modes.config import ModesConfig, ModesError, parse_modes

LEGACY_MODE = "default"
_KEYS = {"DEFAULT_SIZE": "default_size", "DEFAULT_STEPS": "default_steps", "DEFAULT_GUIDANCE": "default_guidance"}


def legacy_modes(env: Mapping[str, str], source: Path) -> ModesConfig | None:
    """MODEL_ROOT, MODEL, LORA_ROOT, DEFAULT_SIZE/STEPS/GUIDANCE as one mode; None without MODEL."""
    model = env.get("MODEL", "").strip()
    if not model:
        return None
    mode: dict[str, object] = {"model": model}
    for variable, key in _KEYS.items():
        raw = env.get(variable, "").strip()
        if raw:
            mode[key] = raw if key == "default_size" else _number(variable, raw)
    data = {
        "model_root": env.get("MODEL_ROOT", "").strip() or ".",
        "default_mode": LEGACY_MODE,
        "modes": {LEGACY_MODE: mode},
    }
    if env.get("LORA_ROOT", "").strip():
        data["lora_root"] = env["LORA_ROOT"].strip()
    return parse_modes(yaml.safe_dump(data), source)


def _number(variable: str, raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            raise ModesError(f"{variable}={raw!r} is not a number") from None
