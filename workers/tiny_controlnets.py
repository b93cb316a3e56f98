"""Build ControlNets for a locally built model, with seeded random weights.

Tests need real ControlNet files in the forms users bring: a diffusers folder
(``config.json`` + weights), an SD1.5 single file in the original layout of
``control_v11p_sd15_*`` (keys under ``control_model.``), and an SDXL single file in
diffusers' layout as ``controlnet-canny-sdxl`` ships.  A tiny single file gets a
config sidecar (``<name>.config/config.json``) describing its small architecture.
The ControlNet starts from the model's UNet (``ControlNetModel.from_unet``); its zero
convolutions, which training would grow from zero, get small random weights so the
control image changes the output.

    python -m workers.tiny_controlnets --model .cache/models/tiny-sd15 --out .cache/models/cn-sd15
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from workers.offline import force_offline

force_offline()

FORMATS = ("diffusers", "single")
# Four hint-encoder widths, as the real ones (16, 32, 96, 256): the original layout numbers its slots by them.
TINY_HINT_CHANNELS = (8, 8, 16, 16)
_ZERO_CONVS = ("controlnet_down_blocks.", "controlnet_mid_block.", "controlnet_cond_embedding.conv_out.")


def build_controlnet(model_dir: Path, out: Path, seed: int = 7, fmt: str = "diffusers") -> Path:
    """Write a ControlNet for the diffusers model at ``model_dir`` to ``out`` (a folder, or a .safetensors file)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel
    from safetensors.torch import save_file

    from modes.controlnets import ORIGINAL_PREFIX
    from workers.original_layout import controlnet_to_original

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    out = Path(out)
    unet = UNet2DConditionModel.from_pretrained(Path(model_dir) / "unet", local_files_only=True)
    torch.manual_seed(seed)  # the hint encoder's initial weights
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=TINY_HINT_CHANNELS)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in controlnet.named_parameters():
            if name.startswith(_ZERO_CONVS):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        if fmt == "diffusers":
            controlnet.save_pretrained(staging / "folder", safe_serialization=True)
            shutil.rmtree(out, ignore_errors=True)
            os.replace(staging / "folder", out)
            return out
        state = {key: tensor.contiguous() for key, tensor in controlnet.state_dict().items()}
        if unet.config.cross_attention_dim == 768:  # SD1.5: the original layout of control_v11p_sd15_* files
            state = {
                ORIGINAL_PREFIX + k: v.contiguous() for k, v in controlnet_to_original(state, controlnet.config).items()
            }
        save_file(state, staging / out.name)
        sidecar = out.with_suffix(".config")
        controlnet.save_config(staging / sidecar.name)
        shutil.rmtree(sidecar, ignore_errors=True)
        os.replace(staging / sidecar.name, sidecar)
        os.replace(staging / out.name, out)
        return out
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="diffusers folder the ControlNet is for")
    parser.add_argument("--out", type=Path, required=True, help="a folder (diffusers) or a .safetensors file (single)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=FORMATS, default="diffusers")
    args = parser.parse_args()
    print(build_controlnet(args.model, args.out, args.seed, args.format))


if __name__ == "__main__":
    main()
