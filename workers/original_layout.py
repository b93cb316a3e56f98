"""Convert a diffusers pipeline's weights to the original (CompVis/Stability) checkpoint layout.

Single-file checkpoints as A1111 and ComfyUI use them keep the key names of the
original training code: the UNet under ``model.diffusion_model.``, the VAE under
``first_stage_model.``, and the text encoders under ``cond_stage_model.`` (SD1,
SD2) or ``conditioner.embedders.N.`` (SDXL), the OpenCLIP ones in OpenCLIP's own
layout (fused attention projections, ``resblocks``, a transposed text
projection).  The tiny-model builder writes such files so that loading them goes
through the same code path as a downloaded checkpoint.

Each converter maps every key it is given and raises on a key it does not know,
so nothing is silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

Tensors = dict[str, torch.Tensor]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
# Where each family keeps its text encoders, by pipeline component name.
TEXT_ENCODER_PREFIXES = {
    "sd15": {"text_encoder": ("clip", "cond_stage_model.")},
    "sd2": {"text_encoder": ("openclip", "cond_stage_model.model.")},
    "sdxl": {
        "text_encoder": ("clip", "conditioner.embedders.0."),
        "text_encoder_2": ("openclip", "conditioner.embedders.1.model."),
    },
    "sdxl-refiner": {"text_encoder_2": ("openclip", "conditioner.embedders.0.model.")},
}

_UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
_UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
_VAE_TOP = {
    "conv_in.": "conv_in.",
    "conv_out.": "conv_out.",
    "conv_norm_out.": "norm_out.",
}
_VAE_RESNET = {
    "norm1.": "norm1.",
    "conv1.": "conv1.",
    "norm2.": "norm2.",
    "conv2.": "conv2.",
    "conv_shortcut.": "nin_shortcut.",
}
_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}
_OPENCLIP_LAYER = {
    "self_attn.out_proj.": "attn.out_proj.",
    "layer_norm1.": "ln_1.",
    "layer_norm2.": "ln_2.",
    "mlp.fc1.": "mlp.c_fc.",
    "mlp.fc2.": "mlp.c_proj.",
}
_OPENCLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}


class UnknownKey(KeyError):
    """A weight the converter has no original name for."""


def _rename(rest: str, table: Mapping[str, str], key: str) -> str:
    """``rest`` with its leading name translated by ``table``; ``key`` (the whole name) for the error."""
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old) :]
    raise UnknownKey(key)


def unet_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> Tensors:
    """A diffusers UNet2DConditionModel state dict in the original ``input_blocks/middle_block/output_blocks`` names.

    Down block ``b`` layer ``l`` is ``input_blocks[1 + b*(L+1) + l]`` (its downsampler the block's last
    slot); up block ``b`` layer ``l`` is ``output_blocks[b*(L+1) + l]``, whose upsampler follows the
    attention when there is one; the mid block is resnet, attention, resnet.
    """
    per_block = config["layers_per_block"] + 1
    up_has_attention = ["CrossAttn" in kind for kind in config["up_block_types"]]
    patterns: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
        (
            re.compile(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)"),
            lambda m: (
                f"input_blocks.{1 + int(m[1]) * per_block + int(m[2])}.0."
                + _rename(m[3], _UNET_RESNET, "unet " + m.string)
            ),
        ),
        (
            re.compile(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)"),
            lambda m: f"input_blocks.{1 + int(m[1]) * per_block + int(m[2])}.1.{m[3]}",
        ),
        (
            re.compile(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)"),
            lambda m: f"input_blocks.{(int(m[1]) + 1) * per_block}.0.op.{m[2]}",
        ),
        (
            re.compile(r"mid_block\.resnets\.([01])\.(.+)"),
            lambda m: f"middle_block.{2 * int(m[1])}." + _rename(m[2], _UNET_RESNET, "unet " + m.string),
        ),
        (re.compile(r"mid_block\.attentions\.0\.(.+)"), lambda m: f"middle_block.1.{m[1]}"),
        (
            re.compile(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)"),
            lambda m: (
                f"output_blocks.{int(m[1]) * per_block + int(m[2])}.0."
                + _rename(m[3], _UNET_RESNET, "unet " + m.string)
            ),
        ),
        (
            re.compile(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)"),
            lambda m: f"output_blocks.{int(m[1]) * per_block + int(m[2])}.1.{m[3]}",
        ),
        (
            re.compile(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)"),
            lambda m: (
                f"output_blocks.{int(m[1]) * per_block + per_block - 1}."
                f"{2 if up_has_attention[int(m[1])] else 1}.conv.{m[2]}"
            ),
        ),
    ]
    out: Tensors = {}
    for key, tensor in state.items():
        out[_match(key, patterns, _UNET_TOP, "unet ")] = tensor
    return out


def vae_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> Tensors:
    """A diffusers AutoencoderKL state dict in the original ``encoder.down/decoder.up`` names.

    The decoder's up blocks are numbered from the bottom in the original, and the mid-block
    attention's projections are 1x1 convolutions there.
    """
    levels = len(config["up_block_types"])
    patterns: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
        (
            re.compile(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)"),
            lambda m: f"encoder.down.{m[1]}.block.{m[2]}." + _rename(m[3], _VAE_RESNET, "vae " + m.string),
        ),
        (
            re.compile(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)"),
            lambda m: f"encoder.down.{m[1]}.downsample.conv.{m[2]}",
        ),
        (
            re.compile(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)"),
            lambda m: (
                f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}." + _rename(m[3], _VAE_RESNET, "vae " + m.string)
            ),
        ),
        (
            re.compile(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)"),
            lambda m: f"decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}",
        ),
        (
            re.compile(r"(encoder|decoder)\.mid_block\.resnets\.([01])\.(.+)"),
            lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}." + _rename(m[3], _VAE_RESNET, "vae " + m.string),
        ),
        (
            re.compile(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)"),
            lambda m: f"{m[1]}.mid.attn_1." + _rename(m[2], _VAE_ATTENTION, "vae " + m.string),
        ),
        (
            re.compile(r"(encoder|decoder)\.(conv_in|conv_out|conv_norm_out)\.(.+)"),
            lambda m: f"{m[1]}." + _rename(f"{m[2]}.{m[3]}", _VAE_TOP, "vae " + m.string),
        ),
    ]
    top = {"quant_conv.": "quant_conv.", "post_quant_conv.": "post_quant_conv."}
    out: Tensors = {}
    for key, tensor in state.items():
        name = _match(key, patterns, top, "vae ")
        if ".mid.attn_1." in name and name.endswith("weight") and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]
        out[name] = tensor
    return out


def clip_to_original(state: Mapping[str, torch.Tensor], positions: int) -> Tensors:
    """A transformers CLIPTextModel state dict as the original ``transformer.text_model.*`` keys.

    Real checkpoints also store the position-id buffer, which transformers does not save.
    """
    out: Tensors = {f"transformer.text_model.{key.removeprefix('text_model.')}": t for key, t in state.items()}
    out["transformer.text_model.embeddings.position_ids"] = torch.arange(positions, dtype=torch.int64)[None]
    return out


def openclip_to_original(state: Mapping[str, torch.Tensor]) -> Tensors:
    """A transformers CLIPTextModel(WithProjection) state dict in OpenCLIP's own layout.

    The query, key and value projections are fused into ``in_proj_weight``/``in_proj_bias``;
    ``text_projection`` is stored as the transpose of the Linear weight.
    """
    flat = {key.removeprefix("text_model."): tensor for key, tensor in state.items()}
    layer = re.compile(r"encoder\.layers\.(\d+)\.(.+)")
    out: Tensors = {}
    fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        if key == "text_projection.weight":
            out["text_projection"] = tensor.T.contiguous()
        elif key in _OPENCLIP_TOP:
            out[_OPENCLIP_TOP[key]] = tensor
        elif match := layer.fullmatch(key):
            index, rest = match[1], match[2]
            qkv = re.fullmatch(r"self_attn\.([qkv])_proj\.(weight|bias)", rest)
            if qkv:
                fused.setdefault((index, qkv[2]), {})[qkv[1]] = tensor
            else:
                out[f"transformer.resblocks.{index}." + _rename(rest, _OPENCLIP_LAYER, f"openclip {key}")] = tensor
        else:
            raise UnknownKey(f"openclip {key}")
    for (index, kind), parts in fused.items():
        if set(parts) != {"q", "k", "v"}:
            raise UnknownKey(f"openclip layer {index}: {kind} of only {sorted(parts)} of q, k, v")
        out[f"transformer.resblocks.{index}.attn.in_proj_{kind}"] = torch.cat([parts[p] for p in "qkv"])
    return out


def pipeline_to_original(pipe: Any, family: str) -> Tensors:
    """Every weight of ``pipe`` (a diffusers SD pipeline of ``family``) under its original checkpoint key."""
    out: Tensors = {}
    for key, tensor in unet_to_original(pipe.unet.state_dict(), pipe.unet.config).items():
        out[UNET_PREFIX + key] = tensor
    for key, tensor in vae_to_original(pipe.vae.state_dict(), pipe.vae.config).items():
        out[VAE_PREFIX + key] = tensor
    for component, (kind, prefix) in TEXT_ENCODER_PREFIXES[family].items():
        encoder = getattr(pipe, component)
        if kind == "clip":
            converted = clip_to_original(encoder.state_dict(), encoder.config.max_position_embeddings)
        else:
            converted = openclip_to_original(encoder.state_dict())
        out.update({prefix + key: tensor for key, tensor in converted.items()})
    return out


def _match(
    key: str,
    patterns: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]],
    top: Mapping[str, str],
    where: str,
) -> str:
    for pattern, build in patterns:
        match = pattern.fullmatch(key)
        if match:
            return build(match)
    return _rename(key, top, where + key)


_CONTROLNET_EXTRA = [
    (re.compile(r"controlnet_down_blocks\.(\d+)\.(.+)"), lambda m: f"zero_convs.{m[1]}.0.{m[2]}"),
    (re.compile(r"controlnet_mid_block\.(.+)"), lambda m: f"middle_block_out.0.{m[1]}"),
    (re.compile(r"controlnet_cond_embedding\.conv_in\.(.+)"), lambda m: f"input_hint_block.0.{m[1]}"),
    (
        re.compile(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.+)"),
        lambda m: f"input_hint_block.{2 * int(m[1]) + 2}.{m[2]}",
    ),
]


def controlnet_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> Tensors:
    """A diffusers ControlNetModel state dict in the original layout of ``control_v11p_sd15_*`` files.

    Its UNet half is named as a UNet's input and middle blocks; the hint encoder is ``input_hint_block``
    (convolutions at even slots, SiLU between, the last at slot 2 x blocks + 2), the zero convolutions
    ``zero_convs.i.0`` and ``middle_block_out.0``.
    """
    blocks = 2 * (len(config["conditioning_embedding_out_channels"]) - 1)
    unet_config = {"layers_per_block": config["layers_per_block"], "up_block_types": []}
    out: Tensors = {}
    rest = {}
    for key, tensor in state.items():
        if key.startswith("controlnet_cond_embedding.conv_out."):
            out[f"input_hint_block.{2 * blocks + 2}.{key.rsplit('.', 1)[1]}"] = tensor
        elif any(pattern.fullmatch(key) for pattern, _ in _CONTROLNET_EXTRA):
            out[_match(key, _CONTROLNET_EXTRA, {}, "controlnet ")] = tensor
        else:
            rest[key] = tensor
    out.update(unet_to_original(rest, unet_config))
    return out
