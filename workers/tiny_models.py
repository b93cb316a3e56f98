"""Build Stable Diffusion 1.5 pipelines from configs with seeded random weights.

Tests and the local demo need a real diffusers pipeline without any download.
This module writes one into a cache folder: the real SD1.5 architecture (full
size, for benchmarks of real cost) or a tiny one with the same cross-attention
width (for tests and the demo), plus a locally written byte-level CLIP
tokenizer.  The same seed always gives the same weights, so the same job gives
the same pixels.  Output of these models is noise: the weights are random.

Command line::

    python -m workers.tiny_models --out .cache/models/tiny-sd15 [--size full] [--lcm]

``--lcm`` gives the UNet the guidance-embedding input of LCM-distilled SD1.5
models (``time_cond_proj_dim=256``), so LCM's ``w = guidance - 1`` path runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workers.offline import force_offline

force_offline()

BUILDER_VERSION = 1
DEFAULT_SEED = 1234
MARKER = "dreamlab-build.json"
LCM_TIME_COND_DIM = 256


@dataclass(frozen=True)
class Sd15Shape:
    """The knobs that differ between the tiny and the full-size architecture."""

    unet_channels: tuple[int, ...]
    unet_layers: int
    vae_channels: tuple[int, ...]
    vae_layers: int
    text_layers: int
    text_heads: int
    text_intermediate: int


SHAPES = {
    "tiny": Sd15Shape(
        unet_channels=(32, 32, 64, 64),
        unet_layers=1,
        vae_channels=(32, 32, 64, 64),
        vae_layers=1,
        text_layers=2,
        text_heads=12,
        text_intermediate=1024,
    ),
    "full": Sd15Shape(
        unet_channels=(320, 640, 1280, 1280),
        unet_layers=2,
        vae_channels=(128, 256, 512, 512),
        vae_layers=2,
        text_layers=12,
        text_heads=12,
        text_intermediate=3072,
    ),
}

SD15_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def _bytes_to_unicode() -> list[str]:
    """CLIP's reversible byte -> printable character table (GPT-2 BPE)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def write_byte_tokenizer(folder: Path) -> None:
    """Write a CLIP tokenizer whose vocabulary is every byte (no merges).

    It tokenizes any text, deterministically, with the real CLIP special tokens;
    it is small because the models built here have random weights anyway.
    """
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    config = {
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "tokenizer_class": "CLIPTokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def build_sd15(out: Path, size: str = "tiny", seed: int = DEFAULT_SEED, lcm: bool = False) -> Path:
    """Build an SD1.5 diffusers folder at ``out`` unless an identical build is there."""
    out = Path(out)
    wanted = {"builder": BUILDER_VERSION, "family": "sd15", "size": size, "seed": seed}
    if lcm:
        wanted["time_cond_proj_dim"] = LCM_TIME_COND_DIM
    marker = out / MARKER
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return out

    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    shape = SHAPES[size]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write_byte_tokenizer(staging / "tokenizer-src")
        tokenizer = CLIPTokenizer.from_pretrained(staging / "tokenizer-src")
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=768,
                intermediate_size=shape.text_intermediate,
                num_hidden_layers=shape.text_layers,
                num_attention_heads=shape.text_heads,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                projection_dim=768,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            block_out_channels=shape.unet_channels,
            layers_per_block=shape.unet_layers,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768,
            attention_head_dim=8,
            time_cond_proj_dim=LCM_TIME_COND_DIM if lcm else None,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=shape.vae_channels,
            layers_per_block=shape.vae_layers,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            sample_size=512,
            scaling_factor=0.18215,
        )
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=PNDMScheduler(**SD15_SCHEDULER),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(staging / "pipeline", safe_serialization=True)
        (staging / "pipeline" / MARKER).write_text(json.dumps(wanted))
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging / "pipeline", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the pipeline to")
    parser.add_argument("--size", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--lcm", action="store_true", help="add the LCM guidance-embedding input to the UNet")
    args = parser.parse_args()
    print(build_sd15(args.out, args.size, args.seed, args.lcm))


if __name__ == "__main__":
    main()
