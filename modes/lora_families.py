"""Which model family a LoRA file is for, and which family a model is, from headers and configs alone.

A LoRA for another family fails inside peft with a list of mangled module names; this
module names both families instead ("SDXL LoRA on an SD1.5 model").  A LoRA's family
comes from kohya's ``ss_base_model_version`` metadata when it wrote one, else from the
input width of a cross-attention key projection (``attn2.to_k``: the text embedding
width, as for checkpoints in modes/families.py), else from its text encoder keys
(a second text encoder is SDXL's).  Imports neither torch nor diffusers, so a modes
reload can check the files it can see.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from modes.families import WIDTH_TO_FAMILY, UnsupportedCheckpoint, detect_family, read_header

LABELS = {"sd15": "SD1.5", "sd2": "SD2.x", "sdxl": "SDXL", "sdxl-refiner": "SDXL refiner"}
# kohya's ss_base_model_version prefixes ("sd_v1", "sd_v2_768_v", "sdxl_base_v1-0", ...)
_KOHYA_VERSIONS = (("sdxl", "sdxl"), ("sd_v2", "sd2"), ("sd_v1", "sd15"))
# The down projection of a LoRA on a cross-attention key: its input is the text embedding.
_TO_K_DOWN = re.compile(r"attn2[._]to_k.*(lora_down|lora_A|lora\.down)")
_SECOND_TEXT_ENCODER = ("lora_te2_", "text_encoder_2.", "te2.")


class LoraMismatch(ValueError):
    """A LoRA made for another model family than the mode's model."""


def lora_family(path: Path) -> str | None:
    """The family the LoRA at ``path`` was trained for, or None when its header does not tell."""
    header = read_header(Path(path))
    version = str(header.metadata.get("ss_base_model_version", ""))
    for prefix, family in _KOHYA_VERSIONS:
        if version.startswith(prefix):
            return family
    for key, shape in header.shapes.items():
        if _TO_K_DOWN.search(key) and shape:
            family = WIDTH_TO_FAMILY.get(shape[-1])
            if family:
                return family
    if any(key.startswith(_SECOND_TEXT_ENCODER) for key in header.shapes):
        return "sdxl"
    return None


def model_family(path: Path) -> str | None:
    """The family of a mode's model (single file or diffusers folder), or None when it cannot be told."""
    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "unet" / "config.json").read_text())
            return WIDTH_TO_FAMILY.get(int(config["cross_attention_dim"]))
        return detect_family(path).name
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_lora(lora: Path, model: str | None) -> None:
    """Raise LoraMismatch when ``lora`` was made for another family than ``model`` (a family name)."""
    if model is None:
        return
    try:
        family = lora_family(lora)
    except UnsupportedCheckpoint as exc:
        raise LoraMismatch(str(exc)) from None
    if family is not None and family != model:
        raise LoraMismatch(
            f"{lora}: {LABELS[family]} LoRA on an {LABELS[model]} model; use a LoRA trained for {LABELS[model]}"
        )
