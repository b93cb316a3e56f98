"""Build Stable Diffusion pipelines of every supported family with seeded random weights.

Tests and the local demo need real diffusers pipelines without any download.
This module builds one from the family's shipped config (workers/configs/): at
full size (the real architecture, for benchmarks of real cost; full-size SDXL
needs about 15 GiB of RAM to build) or tiny (the same layout and the real
cross-attention widths, 768 / 1024 / 2048 / 1280, with few channels and layers,
for tests and the demo), and writes it in one of two formats:

- ``diffusers``: a folder, as ``save_pretrained`` writes it;
- ``single``: one ``.safetensors`` file in the original checkpoint key layout
  that A1111 and ComfyUI use.  A tiny single file (float32) gets a config sidecar
  (``<name>.config/``, see workers/model_configs.py) describing its small
  architecture; a full-size one (float16, as real checkpoints ship) loads with
  the shipped config alone.

Tiny models use a byte-level tokenizer (every byte a token, no merges) so their
embedding tables stay small; full-size ones the real CLIP vocabulary.  The same
seed always gives the same weights, so the same job gives the same pixels.
Output of these models is noise: the weights are random.

Command line::

    python -m workers.tiny_models --out .cache/models/tiny-sd15
    python -m workers.tiny_models --family sdxl --format single --out .cache/models/tiny-sdxl.safetensors
    python -m workers.tiny_models --out .cache/models/tiny-sd15-lcm --lcm

``--lcm`` gives the UNet the guidance-embedding input of LCM-distilled SD1.5
models (``time_cond_proj_dim=256``), so LCM's ``w = guidance - 1`` path runs.
``--inpainting`` builds an inpainting model (``sd-v1-5-inpainting``-shaped): a UNet
with 9 input channels (latents, mask, masked-image latents) in the family's
inpainting pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modes.families import FAMILIES, INPAINTING_CHANNELS, INPAINTING_PIPELINES, read_header
from workers.clip_vocab import END_TOKEN, START_TOKEN, bytes_to_unicode
from workers.model_configs import SIDECAR_SUFFIX, family_config
from workers.offline import force_offline

force_offline()

BUILDER_VERSION = 2
DEFAULT_SEED = 1234
MARKER = "dreamlab-build.json"
LCM_TIME_COND_DIM = 256
METADATA_KEY = "dreamlab-build"
FORMATS = ("diffusers", "single")
SIZES = ("tiny", "full")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")

# Built in this order after seeding, so a seed fixes every weight.
MODEL_COMPONENTS = (*TEXT_ENCODERS, "unet", "vae")

_TINY_VAE = {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1}
_TINY_TEXT = {"num_hidden_layers": 2, "intermediate_size": 1024}
# SDXL's pooled text embedding width, and the time-id embedding width, shrunk.
_TINY_POOLED = 32
_TINY_TIME_EMBED = 8

# Config changes that turn each family's real architecture into its tiny one.
TINY: dict[str, dict[str, dict[str, Any]]] = {
    "sd15": {
        "unet": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "attention_head_dim": 8},
        "vae": _TINY_VAE,
        "text_encoder": _TINY_TEXT,
    },
    "sd2": {
        "unet": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "attention_head_dim": [2, 2, 4, 4]},
        "vae": _TINY_VAE,
        "text_encoder": _TINY_TEXT,
    },
    "sdxl": {
        "unet": {
            "block_out_channels": [32, 64, 64],
            "layers_per_block": 2,
            "attention_head_dim": [2, 4, 4],
            "transformer_layers_per_block": [1, 1, 2],
            "addition_time_embed_dim": _TINY_TIME_EMBED,
            "projection_class_embeddings_input_dim": 6 * _TINY_TIME_EMBED + _TINY_POOLED,
        },
        "vae": _TINY_VAE,
        "text_encoder": _TINY_TEXT,
        "text_encoder_2": {**_TINY_TEXT, "projection_dim": _TINY_POOLED},
    },
    "sdxl-refiner": {
        "unet": {
            "block_out_channels": [32, 64, 64, 64],
            "layers_per_block": 1,
            "attention_head_dim": [2, 4, 4, 4],
            "transformer_layers_per_block": 2,
            "addition_time_embed_dim": _TINY_TIME_EMBED,
            "projection_class_embeddings_input_dim": 5 * _TINY_TIME_EMBED + _TINY_POOLED,
        },
        "vae": _TINY_VAE,
        "text_encoder_2": {**_TINY_TEXT, "projection_dim": _TINY_POOLED},
    },
}


def write_byte_tokenizer(folder: Path, settings: dict[str, Any] | None = None) -> None:
    """Write a CLIP tokenizer whose vocabulary is every byte (no merges).

    It tokenizes any text, deterministically, with the real CLIP special tokens;
    ``settings`` (a tokenizer_config.json) keeps e.g. the family's pad token.
    """
    folder.mkdir(parents=True, exist_ok=True)
    symbols = bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + [START_TOKEN, END_TOKEN]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": START_TOKEN,
        "eos_token": END_TOKEN,
        "pad_token": END_TOKEN,
        "unk_token": END_TOKEN,
        **(settings or {}),
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def build(
    family: str,
    out: Path,
    size: str = "tiny",
    seed: int = DEFAULT_SEED,
    fmt: str = "diffusers",
    lcm: bool = False,
    inpainting: bool = False,
) -> Path:
    """Build a ``family`` pipeline at ``out`` (a folder, or a .safetensors file) unless an identical build is there.

    ``lcm`` adds the guidance-embedding input of LCM-distilled models to the UNet.
    """
    if family not in FAMILIES or size not in SIZES or fmt not in FORMATS:
        raise ValueError(f"family must be one of {FAMILIES}, size one of {SIZES}, format one of {FORMATS}")
    out = Path(out)
    if fmt == "single" and out.suffix != ".safetensors":
        raise ValueError(f"{out}: a single-file model must be named *.safetensors")
    wanted = {"builder": BUILDER_VERSION, "family": family, "size": size, "seed": seed, "format": fmt}
    if lcm:
        wanted["time_cond_proj_dim"] = LCM_TIME_COND_DIM
    if inpainting:
        if family not in INPAINTING_PIPELINES:
            raise ValueError(f"no inpainting pipeline for {family}; one of {sorted(INPAINTING_PIPELINES)}")
        wanted["in_channels"] = INPAINTING_CHANNELS
    if _built(out, fmt) == wanted:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        pipe = _make_pipeline(family, size, seed, staging, lcm, inpainting)
        if fmt == "diffusers":
            _publish_folder(pipe, wanted, staging, out)
        else:
            _publish_single_file(pipe, family, size, wanted, staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def build_sd15(out: Path, size: str = "tiny", seed: int = DEFAULT_SEED, lcm: bool = False) -> Path:
    """The SD1.5 diffusers folder the demo mode and most tests use."""
    return build("sd15", out, size, seed, lcm=lcm)


def _built(out: Path, fmt: str) -> dict[str, Any] | None:
    """The build description recorded at ``out``, if any."""
    try:
        if fmt == "diffusers":
            return json.loads((out / MARKER).read_text())
        return json.loads(read_header(out).metadata[METADATA_KEY])
    except (OSError, ValueError, KeyError):
        return None


def _make_pipeline(family: str, size: str, seed: int, scratch: Path, lcm: bool, inpainting: bool = False) -> Any:
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    overrides = TINY[family] if size == "tiny" else {}
    if lcm:
        overrides = {**overrides, "unet": {**overrides.get("unet", {}), "time_cond_proj_dim": LCM_TIME_COND_DIM}}
    if inpainting:
        overrides = {**overrides, "unet": {**overrides.get("unet", {}), "in_channels": INPAINTING_CHANNELS}}
    with family_config(family) as config:
        index = json.loads((config / "model_index.json").read_text())
        components: dict[str, Any] = {}
        for name in index:
            if name.startswith("tokenizer") and index[name][0] is not None:
                source = config / name
                if size == "tiny":
                    source = scratch / name
                    write_byte_tokenizer(source, json.loads((config / name / "tokenizer_config.json").read_text()))
                components[name] = CLIPTokenizer.from_pretrained(source, local_files_only=True)
        scheduler_class = getattr(diffusers, index["scheduler"][1])
        components["scheduler"] = scheduler_class.from_config(scheduler_class.load_config(config / "scheduler"))
        torch.manual_seed(seed)
        for name in MODEL_COMPONENTS:
            if name not in index or index[name][0] is None:
                continue
            if name in TEXT_ENCODERS:
                text_config = CLIPTextConfig.from_pretrained(config / name, local_files_only=True)
                text_config.update(overrides.get(name, {}))
                if size == "tiny":
                    _match_tokenizer(text_config, components[name.replace("text_encoder", "tokenizer")])
                with_projection = index[name][1] == "CLIPTextModelWithProjection"
                components[name] = (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(text_config)
            else:
                model_class = getattr(diffusers, index[name][1])
                settings = {**model_class.load_config(config / name), **overrides.get(name, {})}
                components[name] = model_class.from_config(settings)
    pipeline_class = getattr(diffusers, INPAINTING_PIPELINES[family] if inpainting else index["_class_name"])
    arguments = {
        key: components.get(key) if isinstance(value, list) else value
        for key, value in index.items()
        if not key.startswith("_")
    }
    pipe = pipeline_class(**arguments)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _match_tokenizer(text_config: Any, tokenizer: Any) -> None:
    """A tiny text encoder's embedding table and special ids follow its byte tokenizer."""
    text_config.vocab_size = len(tokenizer)
    text_config.bos_token_id = tokenizer.bos_token_id
    text_config.eos_token_id = tokenizer.eos_token_id
    text_config.pad_token_id = tokenizer.pad_token_id


def _publish_folder(pipe: Any, wanted: dict[str, Any], staging: Path, out: Path) -> None:
    pipe.save_pretrained(staging / "pipeline", safe_serialization=True)
    (staging / "pipeline" / MARKER).write_text(json.dumps(wanted))
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging / "pipeline", out)


def _publish_single_file(pipe: Any, family: str, size: str, wanted: dict[str, Any], staging: Path, out: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from workers.original_layout import pipeline_to_original

    if size == "full":
        pipe = pipe.to(dtype=torch.float16)  # as real checkpoints ship, and half the memory while saving
    tensors = {key: tensor.contiguous() for key, tensor in pipeline_to_original(pipe, family).items()}
    save_file(tensors, staging / out.name, metadata={METADATA_KEY: json.dumps(wanted)})
    sidecar = out.with_suffix(SIDECAR_SUFFIX)
    if sidecar.exists():
        shutil.rmtree(sidecar)
    if size != "full":
        write_config_folder(pipe, staging / sidecar.name)
        os.replace(staging / sidecar.name, sidecar)
    os.replace(staging / out.name, out)


def write_config_folder(pipe: Any, folder: Path) -> None:
    """Write ``pipe``'s weight-free diffusers layout: model_index.json, configs, tokenizers."""
    pipe.save_config(folder)
    for name, component in pipe.components.items():
        if component is None:
            continue
        if hasattr(component, "save_config"):
            component.save_config(folder / name)
        elif hasattr(component, "config"):
            component.config.save_pretrained(folder / name)
        else:
            component.save_pretrained(folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder (diffusers) or .safetensors file (single)")
    parser.add_argument("--family", choices=FAMILIES, default="sd15")
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument("--format", choices=FORMATS, default="diffusers")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--lcm", action="store_true", help="add the LCM guidance-embedding input to the UNet")
    parser.add_argument("--inpainting", action="store_true", help="a 9-input-channel inpainting model")
    args = parser.parse_args()
    print(build(args.family, args.out, args.size, args.seed, args.format, args.lcm, args.inpainting))


if __name__ == "__main__":
    main()
