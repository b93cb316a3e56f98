"""Which Stable Diffusion family a single-file checkpoint is, from its safetensors header alone.

A ``.safetensors`` file starts with an 8-byte little-endian header length and a
JSON header naming every tensor with its shape; no tensor is read here.  Two
signals must agree: the UNet's cross-attention width (the last dimension of any
``attn2.to_k`` weight) and the text encoder's key prefix in the original
(A1111/ComfyUI) layout:

=============  =====  ==================================================
family         width  text encoder keys
=============  =====  ==================================================
sd15           768    ``cond_stage_model.transformer.`` (CLIP ViT-L)
sd2            1024   ``cond_stage_model.model.`` (OpenCLIP ViT-H)
sdxl           2048   ``conditioner.embedders.0.`` and ``.1.``
sdxl-refiner   1280   ``conditioner.embedders.0.`` only (OpenCLIP bigG)
=============  =====  ==================================================

A UNet whose first convolution takes 9 channels is an inpainting model.
It imports neither torch nor diffusers, nor anything of workers/: the API reads it when it loads
modes.yaml (whether a mode is an inpainting one), and detection costs a few milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from modes import safetensors_header

UNET = "model.diffusion_model."
VAE = "first_stage_model."
# The key FACTS.md measured on real checkpoints; any other attn2.to_k carries the same width.
CROSS_ATTENTION_KEY = UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
CONV_IN_KEY = UNET + "input_blocks.0.0.weight"
_ATTN2_TO_K = re.compile(r"^model\.diffusion_model\..*\.attn2\.to_k\.weight$")

WIDTH_TO_FAMILY = {768: "sd15", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}
FAMILIES = tuple(WIDTH_TO_FAMILY.values())
# The UNet of an inpainting model takes the latents, the mask and the masked image's latents.
INPAINTING_CHANNELS = 9
INPAINTING_PIPELINES = {
    "sd15": "StableDiffusionInpaintPipeline",
    "sd2": "StableDiffusionInpaintPipeline",
    "sdxl": "StableDiffusionXLInpaintPipeline",
}


class UnsupportedCheckpoint(ValueError):
    """The file is not a checkpoint of a supported family; the message says what it is and what to do."""


@dataclass(frozen=True)
class Family:
    name: str  # one of FAMILIES
    cross_attention_width: int
    inpainting: bool


@dataclass(frozen=True)
class Header:
    """A safetensors header: tensor name -> shape, and the free-form metadata."""

    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]


def read_header(path: Path) -> Header:
    """Read the JSON header of a .safetensors file without touching its tensors."""
    try:
        header = safetensors_header.read_header(Path(path))
    except ValueError as exc:
        raise UnsupportedCheckpoint(str(exc)) from None
    if not isinstance(header, dict):
        raise UnsupportedCheckpoint(f"{path}: not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    try:
        shapes = {name: tuple(int(d) for d in info["shape"]) for name, info in header.items()}
    except (TypeError, KeyError, ValueError):
        raise UnsupportedCheckpoint(f"{path}: not a safetensors file (a tensor entry has no shape)") from None
    return Header(shapes=shapes, metadata=metadata if isinstance(metadata, dict) else {})


def detect_family(path: Path) -> Family:
    """The family of the single-file checkpoint at ``path``, or UnsupportedCheckpoint saying why not."""
    path = Path(path)
    if path.suffix in safetensors_header.PICKLE_SUFFIXES:
        raise UnsupportedCheckpoint(safetensors_header.pickle_message(path))
    if path.suffix != ".safetensors":
        raise UnsupportedCheckpoint(
            f"{path}: only .safetensors single files are supported; pickled checkpoints are "
            f"{safetensors_header.PICKLE_REFUSED}"
        )
    return family_from_shapes(read_header(path).shapes, str(path))


def family_from_shapes(shapes: dict[str, tuple[int, ...]], where: str = "checkpoint") -> Family:
    width = _cross_attention_width(shapes, where)
    name = WIDTH_TO_FAMILY.get(width)
    if name is None:
        raise UnsupportedCheckpoint(
            f"{where}: cross-attention width {width} matches no supported family "
            f"(768 SD1.5, 1024 SD2.x, 2048 SDXL, 1280 SDXL refiner)"
        )
    encoder = _text_encoder_family(shapes)
    if encoder is None:
        raise UnsupportedCheckpoint(
            f"{where}: a {name} UNet without its text encoder (no cond_stage_model.* or conditioner.embedders.* "
            "keys); only full checkpoints load as a single file: use a diffusers folder instead"
        )
    if encoder != name:
        raise UnsupportedCheckpoint(
            f"{where}: the UNet's cross-attention width {width} says {name} but the text encoder keys say {encoder}; "
            "the file is not a consistent Stable Diffusion checkpoint"
        )
    if not any(key.startswith(VAE) for key in shapes):
        raise UnsupportedCheckpoint(f"{where}: a {name} checkpoint without its VAE (no {VAE}* keys)")
    conv_in = shapes.get(CONV_IN_KEY)
    return Family(
        name=name, cross_attention_width=width, inpainting=bool(conv_in and conv_in[1] == INPAINTING_CHANNELS)
    )


def is_inpainting(path: Path) -> bool:
    """Whether the model at ``path`` (a single file or a diffusers folder) is an inpainting model;
    False when it cannot be read (the worker then says what is wrong with it)."""
    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "unet" / "config.json").read_text())
            return config.get("in_channels") == INPAINTING_CHANNELS
        return path.is_file() and detect_family(path).inpainting
    except (OSError, ValueError):
        return False


def _cross_attention_width(shapes: dict[str, tuple[int, ...]], where: str) -> int:
    shape = shapes.get(CROSS_ATTENTION_KEY)
    if shape is None:
        shape = next((s for key, s in shapes.items() if _ATTN2_TO_K.match(key)), None)
    if shape is None:
        raise UnsupportedCheckpoint(f"{where}: {_describe(shapes)}; supported are SD1.5, SD2.x, SDXL, SDXL refiner")
    return shape[-1]


def _text_encoder_family(shapes: dict[str, tuple[int, ...]]) -> str | None:
    def has(prefix: str) -> bool:
        return any(key.startswith(prefix) for key in shapes)

    if has("conditioner.embedders.1."):
        return "sdxl"
    if has("conditioner.embedders.0."):
        return "sdxl-refiner"
    if has("cond_stage_model.model."):
        return "sd2"
    if has("cond_stage_model.transformer."):
        return "sd15"
    return None


def _describe(shapes: dict[str, tuple[int, ...]]) -> str:
    """A guess at what a file without an original-layout UNet holds, for the error message."""
    keys = list(shapes)
    if any(key.startswith(UNET + "joint_blocks.") or key.startswith("joint_blocks.") for key in keys):
        return "looks like Stable Diffusion 3, which is not supported"
    if any(key.startswith(("double_blocks.", "model.diffusion_model.double_blocks.")) for key in keys):
        return "looks like Flux, which is not supported"
    if any(key.startswith(("down_blocks.", "unet.down_blocks.", "lora_")) or ".lora_" in key for key in keys):
        return "holds diffusers-layout or LoRA weights, not a full checkpoint in the original layout"
    if not any(key.startswith(UNET) for key in keys):
        return f"no UNet in the original layout (no {UNET}* keys among {len(keys)} tensors)"
    return "a UNet without cross-attention"
