"""Load a ControlNet, a diffusers folder or a single .safetensors file, without any network.

A folder loads with ``ControlNetModel.from_pretrained(local_files_only=True)``.  A single
file's family and layout come from its header (modes/controlnets.py) and its
architecture from a config sidecar (``<name>.config/config.json``, as for checkpoints) or
else the config shipped for its family (``workers/configs/controlnet-<family>/``, the
layout of ``control_v11p_sd15_canny`` and ``controlnet-canny-sdxl-1.0``); diffusers'
``from_single_file(config=<that folder>)`` converts the original layout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from modes.controlnets import FOLDER_WEIGHTS, check_controlnet_family
from modes.families import UnsupportedCheckpoint
from modes.safetensors_header import parameter_count
from workers.loader import ModelLoadError, align_module, check_files
from workers.model_configs import CONFIG_ROOT, sidecar_for
from workers.offline import force_offline

force_offline()

import torch  # noqa: E402
from diffusers import ControlNetModel  # noqa: E402


def controlnet_config(path: Path, family: str) -> Path:
    """The folder holding the config.json a single-file ControlNet loads with."""
    return sidecar_for(path) or CONFIG_ROOT / f"controlnet-{family}"


def load_controlnet(path: str | Path, dtype: Any, model_family: str | None) -> Any:
    """The ControlNet at ``path`` on the CPU, refused (ModelLoadError naming both families) when it is
    not made for ``model_family``."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such ControlNet folder or file; check the mode's 'controlnets'")
    check_files(path / FOLDER_WEIGHTS if path.is_dir() else path)
    try:
        family = check_controlnet_family(path, model_family)
    except UnsupportedCheckpoint as exc:
        raise ModelLoadError(str(exc)) from None
    if path.is_dir():
        model = ControlNetModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    else:
        config = controlnet_config(path, family)
        model = ControlNetModel.from_single_file(str(path), config=str(config), local_files_only=True, dtype=dtype)
    return align_module(model)


def controlnet_bytes(path: Path, element_size: int) -> int:
    """Bytes the ControlNet's weights take once loaded, from the safetensors headers alone."""
    path = Path(path)
    return parameter_count(path / FOLDER_WEIGHTS if path.is_dir() else path) * element_size


class LoadedControlNets:
    """The ControlNets loaded beside the current model, by path, with their bytes.

    They belong to the model they were checked against: the backend drops them when it
    loads another model.  Their bytes count in the worker's used memory, so the capacity
    check of the next load and the host cache's budget see them.
    """

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[Any, int]] = {}

    def get(self, path: str, dtype: Any, device: str, family: str | None, reserve: Callable[[int], None]) -> Any:
        """The ControlNet at ``path``, loaded once ``reserve(bytes)`` has not refused it."""
        if path not in self._loaded:
            size = controlnet_bytes(Path(path), torch.tensor([], dtype=dtype).element_size())
            reserve(size)
            self._loaded[path] = (load_controlnet(path, dtype, family).to(device), size)
        return self._loaded[path][0]

    def clear(self) -> None:
        self._loaded = {}

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._loaded.values())

    def report(self) -> list[dict[str, Any]]:
        return [{"path": path, "bytes": size} for path, (_, size) in self._loaded.items()]
