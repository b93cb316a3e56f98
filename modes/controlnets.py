"""Which family a ControlNet file is for, and in which layout, from its safetensors header alone.

Two layouts are in use:

- the original one of ``control_v11p_sd15_*`` files as A1111 and ComfyUI load them
  (keys ``input_hint_block.*``, ``zero_convs.*``, ``input_blocks.*``, optionally under
  ``control_model.``);
- diffusers' (``controlnet_cond_embedding.*``, ``down_blocks.*``), as a folder's
  ``diffusion_pytorch_model.safetensors`` or as one file such as ``controlnet-canny-sdxl``.

The family comes from the cross-attention width (the last dimension of an ``attn2.to_k``
weight), as for checkpoints (modes/families.py).  Imports neither torch nor diffusers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from modes.families import WIDTH_TO_FAMILY, UnsupportedCheckpoint, read_header
from modes.lora_families import LABELS

ORIGINAL_PREFIX = "control_model."
ORIGINAL_HINT = "input_hint_block.0.weight"
DIFFUSERS_HINT = "controlnet_cond_embedding.conv_in.weight"
FOLDER_WEIGHTS = "diffusion_pytorch_model.safetensors"
_TO_K = re.compile(r"attn2\.to_k\.weight$")


@dataclass(frozen=True)
class ControlNetFile:
    family: str
    layout: str  # "original" or "diffusers"


def detect_controlnet(path: Path) -> ControlNetFile:
    """The family and layout of the ControlNet at ``path`` (a folder or a .safetensors file)."""
    path = Path(path)
    if path.is_dir():
        try:
            width = json.loads((path / "config.json").read_text())["cross_attention_dim"]
        except (OSError, ValueError, KeyError):
            raise UnsupportedCheckpoint(f"{path}: a ControlNet folder needs its config.json") from None
        return ControlNetFile(_family(width, path), "diffusers")
    shapes = {key.removeprefix(ORIGINAL_PREFIX): shape for key, shape in read_header(path).shapes.items()}
    if ORIGINAL_HINT in shapes:
        layout = "original"
    elif DIFFUSERS_HINT in shapes:
        layout = "diffusers"
    else:
        raise UnsupportedCheckpoint(
            f"{path}: not a ControlNet (no {ORIGINAL_HINT} or {DIFFUSERS_HINT}); name a ControlNet file or folder"
        )
    width = next((shape[-1] for key, shape in shapes.items() if _TO_K.search(key)), None)
    return ControlNetFile(_family(width, path), layout)


def _family(width: int | None, path: Path) -> str:
    family = WIDTH_TO_FAMILY.get(width) if width else None
    if family is None or family == "sdxl-refiner":
        raise UnsupportedCheckpoint(
            f"{path}: a ControlNet of cross-attention width {width}, which matches no supported family "
            "(768 SD1.5, 1024 SD2.x, 2048 SDXL)"
        )
    return family


def check_controlnet_family(path: Path, model: str | None) -> str:
    """The ControlNet's family; UnsupportedCheckpoint naming both when it is not ``model``'s (a family name)."""
    family = detect_controlnet(path).family
    if model is not None and family != model:
        raise UnsupportedCheckpoint(
            f"{path}: an {LABELS[family]} ControlNet on an {LABELS[model]} model; use a ControlNet made for "
            f"{LABELS[model]}"
        )
    return family
