"""Load a mode's model, a diffusers folder or a single-file checkpoint, without any network.

- A folder with ``model_index.json`` loads with ``from_pretrained(local_files_only=True)``.
- A ``.safetensors`` file is read as a checkpoint in the original layout: its family comes
  from the header (modes/families.py), its architecture from the family's shipped config
  or its config sidecar (workers/model_configs.py), and the family's pipeline class loads
  it with ``from_single_file(config=<that folder>, local_files_only=True)``.
- An inpainting checkpoint (a UNet with 9 input channels, read from the header) loads in
  its family's inpainting pipeline; the shipped config's UNet is given 9 input channels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modes.families import (
    CONV_IN_KEY,
    INPAINTING_CHANNELS,
    INPAINTING_PIPELINES,
    Family,
    UnsupportedCheckpoint,
    detect_family,
    read_header,
)
from workers.errors import JobError
from workers.model_configs import SIDECAR_SUFFIX, family_config, sidecar_for
from workers.model_files import check_model_files
from workers.offline import force_offline

force_offline()

import diffusers  # noqa: E402

PIPELINE_CLASSES = {
    "sd15": "StableDiffusionPipeline",
    "sd2": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
}


class ModelLoadError(JobError, ValueError):
    """The model cannot be loaded; the message says which file and what to do."""


ALIGNMENT = 64  # bytes: a cache line, and the widest SIMD load


def load_pipeline(model_path: str | Path, dtype: Any) -> Any:
    """The pipeline stored at ``model_path`` (a diffusers folder or a .safetensors checkpoint), on the CPU."""
    path = Path(model_path)
    check_files(path)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(f"{path}: a folder without model_index.json is not a diffusers model")
        return align(diffusers.DiffusionPipeline.from_pretrained(path, local_files_only=True, dtype=dtype))
    if path.is_file():
        return align(load_single_file(path, dtype))
    raise ModelLoadError(f"{path}: no such model folder or file; check the mode's 'model' and model_root")


def check_files(path: Path) -> None:
    """Refuse a pickle or a truncated file before anything reads it (workers/model_files.py)."""
    try:
        check_model_files(path)
    except UnsupportedCheckpoint as exc:
        raise ModelLoadError(str(exc)) from None


def align(pipeline: Any) -> Any:
    """Copy any weight that does not start on an ALIGNMENT boundary (a view into a safetensors
    buffer can start anywhere) into an aligned tensor of its own.  CPU matmul kernels may round
    differently by the address of their operands: the same weights loaded from a folder and from
    a single file gave images one float32 ulp apart on some CPUs.  Aligned, they agree bit for bit."""
    for module in pipeline.components.values():
        align_module(module)
    return pipeline


def align_module(module: Any) -> Any:
    """``module`` with every weight on an ALIGNMENT boundary (see align)."""
    for tensor in [*getattr(module, "parameters", list)(), *getattr(module, "buffers", list)()]:
        if tensor.data_ptr() % ALIGNMENT:
            tensor.data = tensor.data.clone()
    return module


def load_single_file(path: Path, dtype: Any) -> Any:
    try:
        family = detect_family(path)
    except UnsupportedCheckpoint as exc:
        raise ModelLoadError(str(exc)) from None
    sidecar = sidecar_for(path)
    pipeline_class = getattr(diffusers, _pipeline_class(path, family))
    with family_config(family.name, sidecar) as config:
        _check_width(path, family, config, sidecar)
        if family.inpainting:
            _set_in_channels(config, INPAINTING_CHANNELS)
        return pipeline_class.from_single_file(str(path), config=str(config), local_files_only=True, dtype=dtype)


def _pipeline_class(path: Path, family: Family) -> str:
    if not family.inpainting:
        return PIPELINE_CLASSES[family.name]
    if family.name not in INPAINTING_PIPELINES:
        raise ModelLoadError(
            f"{path}: an {family.name} inpainting checkpoint (9 input channels); inpainting models load for "
            f"{', '.join(sorted(INPAINTING_PIPELINES))} only"
        )
    return INPAINTING_PIPELINES[family.name]


def _set_in_channels(config: Path, channels: int) -> None:
    """The shipped configs describe the regular UNet; an inpainting checkpoint's takes 9 channels."""
    unet = config / "unet" / "config.json"
    settings = json.loads(unet.read_text())
    unet.write_text(json.dumps({**settings, "in_channels": channels}))


def _check_width(path: Path, family: Family, config: Path, sidecar: Path | None) -> None:
    """Refuse early, with a way out, a checkpoint whose UNet is not the config's architecture."""
    expected = json.loads((config / "unet" / "config.json").read_text())["block_out_channels"][0]
    shape = read_header(path).shapes.get(CONV_IN_KEY)
    if shape and shape[0] != expected:
        where = f"its config sidecar {sidecar}" if sidecar else f"the shipped {family.name} config"
        raise ModelLoadError(
            f"{path}: the UNet is {shape[0]} channels wide but {where} describes {expected}; put a diffusers "
            f"config folder for this architecture at {path.with_suffix(SIDECAR_SUFFIX)}"
        )
