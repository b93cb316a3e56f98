"""Build LoRA files for a locally built model, with seeded random weights.

Tests need real LoRA files in both formats users bring: diffusers/peft
(``unet.<module>.lora_A.weight``) and kohya (``lora_unet_<module>.lora_down.weight``
with an ``alpha``).  The LoRA is trained on nothing: its weights are random and
small (std 0.1), enough to change every pixel and to be told apart.

    python -m workers.tiny_loras --model .cache/models/tiny-sd15 --out .cache/loras/style.safetensors
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from workers.offline import force_offline

force_offline()

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
FORMATS = ("diffusers", "kohya")


def build_lora(model_dir: Path, out: Path, seed: int, fmt: str = "diffusers", rank: int = 4) -> Path:
    """Write a UNet LoRA for the diffusers model at ``model_dir`` to the file ``out``."""
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    unet = UNet2DConditionModel.from_pretrained(Path(model_dir) / "unet", local_files_only=True)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, init_lora_weights=False))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    layers = {k: v.contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    tensors = _kohya(layers, rank) if fmt == "kohya" else {f"unet.{k}": v for k, v in layers.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    save_file(tensors, tmp)
    os.replace(tmp, out)
    return out


def _kohya(layers: dict, rank: int) -> dict:
    """peft keys -> kohya's flat names with lora_down/lora_up and one alpha per module."""
    import torch

    tensors = {}
    for key, value in layers.items():
        module, _, kind = key.rpartition(".lora_")
        flat = "lora_unet_" + module.replace(".", "_")
        tensors[f"{flat}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = value
        tensors[f"{flat}.alpha"] = torch.tensor(float(rank))
    return tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="diffusers folder the LoRA is for")
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=FORMATS, default="diffusers")
    args = parser.parse_args()
    print(build_lora(args.model, args.out, args.seed, args.format))


if __name__ == "__main__":
    main()
