"""Family detection from the safetensors header alone, on the tiny single files and on crafted headers."""

from __future__ import annotations

import json
import struct

import pytest

from modes.families import (
    CONV_IN_KEY,
    Family,
    UnsupportedCheckpoint,
    detect_family,
    family_from_shapes,
    read_header,
)

WIDTHS = {"sd15": 768, "sd2": 1024, "sdxl": 2048, "sdxl-refiner": 1280}


def write_header_only(path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None) -> None:
    """A .safetensors header naming tensors whose data is not in the file at all."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


@pytest.mark.parametrize("family", sorted(WIDTHS))
def test_tiny_single_files_are_detected(family_models, family):
    assert detect_family(family_models[(family, "single")]) == Family(family, WIDTHS[family], inpainting=False)


@pytest.mark.parametrize("family", sorted(WIDTHS))
def test_detection_reads_no_tensor_data(tmp_path, family_models, family):
    """A file cut right after its header (every tensor missing) is detected the same."""
    source = family_models[(family, "single")].read_bytes()
    (length,) = struct.unpack("<Q", source[:8])
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(source[: 8 + length])
    assert detect_family(cut).name == family


def sd15_shapes(family_models) -> dict[str, tuple[int, ...]]:
    return dict(read_header(family_models[("sd15", "single")]).shapes)


def test_nine_input_channels_is_an_inpainting_model(tmp_path, family_models):
    shapes = sd15_shapes(family_models)
    out_channels, _, k, k2 = shapes[CONV_IN_KEY]
    shapes[CONV_IN_KEY] = (out_channels, 9, k, k2)
    path = tmp_path / "inpaint.safetensors"
    write_header_only(path, shapes)
    assert detect_family(path) == Family("sd15", 768, inpainting=True)


def test_real_checkpoint_key_decides_the_width(family_models):
    """The key FACTS.md measured on real checkpoints decides the width when present."""
    shapes = sd15_shapes(family_models)
    shapes["model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"] = (640, 1024)
    with pytest.raises(UnsupportedCheckpoint, match="width 1024 says sd2 but the text encoder keys say sd15"):
        family_from_shapes(shapes)


def test_metadata_is_kept_apart_from_tensors(tmp_path, family_models):
    path = tmp_path / "meta.safetensors"
    write_header_only(path, sd15_shapes(family_models), {"modelspec.title": "x"})
    header = read_header(path)
    assert header.metadata == {"modelspec.title": "x"}
    assert detect_family(path).name == "sd15"


def _without(shapes: dict, prefix: str) -> dict:
    return {k: v for k, v in shapes.items() if not k.startswith(prefix)}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: _without(s, "cond_stage_model."), "without its text encoder"),
        (lambda s: _without(s, "first_stage_model."), "without its VAE"),
        (
            lambda s: {**_without(s, "cond_stage_model."), "conditioner.embedders.0.model.text_projection": (8, 8)},
            "width 768 says sd15 but the text encoder keys say sdxl-refiner",
        ),
        (
            lambda s: {k: (v[0], 4096) if k.endswith("attn2.to_k.weight") else v for k, v in s.items()},
            "width 4096 matches no supported family",
        ),
        (lambda s: {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": (9, 3)}, "Stable Diffusion 3"),
        (lambda s: {"double_blocks.0.img_attn.qkv.weight": (9, 3)}, "Flux"),
        (lambda s: {"lora_unet_down_blocks_0.alpha": ()}, "LoRA"),
        (lambda s: {"first_stage_model.encoder.conv_in.weight": (8, 3, 3, 3)}, "no UNet in the original layout"),
    ],
)
def test_other_files_get_a_clear_error(tmp_path, family_models, edit, message):
    path = tmp_path / "other.safetensors"
    write_header_only(path, edit(sd15_shapes(family_models)))
    with pytest.raises(UnsupportedCheckpoint, match=message):
        detect_family(path)


def test_diffusers_component_file_is_not_a_checkpoint(family_models):
    unet = family_models[("sd15", "diffusers")] / "unet" / "diffusion_pytorch_model.safetensors"
    with pytest.raises(UnsupportedCheckpoint, match="diffusers-layout"):
        detect_family(unet)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.ckpt", b"\x80\x02}q\x00.", "refused: loading them can run code; convert them to .safetensors"),
        ("model.json", b"{}", "only .safetensors"),
        ("short.safetensors", b"\x01\x02", "too short"),
        ("huge.safetensors", struct.pack("<Q", 2**40) + b"{}", "header of 1099511627776 bytes"),
        ("garbage.safetensors", struct.pack("<Q", 4) + b"\xff\xfe{]", "not a safetensors file"),
        ("list.safetensors", struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
)
def test_non_safetensors_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnsupportedCheckpoint, match=message):
        detect_family(path)
