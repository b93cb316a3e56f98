"""Request validation, as pure functions (the HTTP side is in test_api_e2e.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import pytest
import yaml

from api.errors import ApiError
from api.validation import parse_generation
from modes import load_modes


@pytest.fixture
def modes(tmp_path):
    path = tmp_path / "modes.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "default_mode": "fast",
                "modes": {
                    "fast": {
                        "model": "m",
                        "scheduler": "lcm",
                        "default_steps": 4,
                        "default_guidance": 1.0,
                        "default_size": "512x512",
                        "max_size": 768,
                    },
                    "full": {"model": "m", "negative_prompt": "ugly", "default_size": "768x512"},
                },
            }
        )
    )
    return load_modes(path)


def test_defaults_come_from_the_mode(modes):
    mode, params, uploads = parse_generation({"prompt": "p", "mode": "full", "seed": 3}, modes)
    assert mode.name == "full"
    assert (params.width, params.height, params.steps, params.guidance) == (768, 512, 20, 7.5)
    assert params.negative_prompt == "ugly" and params.seed == 3
    assert (params.init_image, params.strength, uploads) == (None, None, {})


def test_null_means_default_and_seed_is_drawn(modes):
    body = {
        "prompt": "p",
        "mode": None,
        "negative_prompt": None,
        "size": None,
        "num_inference_steps": None,
        "guidance_scale": None,
        "seed": None,
    }
    mode, params, _ = parse_generation(body, modes)
    assert mode.name == "fast" and params.steps == 4 and 0 <= params.seed < 2**32


def test_explicit_values_are_kept(modes):
    _, params, _ = parse_generation(
        {
            "prompt": "p",
            "negative_prompt": "n",
            "size": "64x128",
            "num_inference_steps": 8,
            "guidance_scale": 2,
            "seed": 2**32 - 1,
        },
        modes,
    )
    assert (params.width, params.height, params.steps, params.guidance, params.seed) == (64, 128, 8, 2.0, 2**32 - 1)
    assert isinstance(params.guidance, float)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"prompt": "p", "size": "776x512"}, 400, "size"),  # over the mode's max_size
        ({"prompt": "p", "size": "0x64"}, 400, "size"),
        ({"prompt": "p", "num_inference_steps": 51}, 400, "num_inference_steps"),  # lcm caps at 50
        ({"prompt": "p", "num_inference_steps": True}, 400, "num_inference_steps"),
        ({"prompt": "p", "guidance_scale": "7"}, 400, "guidance_scale"),
        ({"prompt": "p" * 4001}, 400, "prompt"),
        ({"prompt": "a lone \ud800 surrogate"}, 400, "prompt"),
        ({"prompt": "p", "negative_prompt": "\udfff"}, 400, "negative_prompt"),
        ({"prompt": "p", "mode": 3}, 400, "mode"),
        ({"prompt": "p", "mode": "other"}, 404, "mode"),
    ],
)
def test_rejections(modes, body, status, field):
    with pytest.raises(ApiError) as caught:
        parse_generation(body, modes)
    assert (caught.value.status, caught.value.field) == (status, field)


def png_base64(width: int = 24, height: int = 16) -> tuple[str, bytes]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode(), buffer.getvalue()


def test_init_image_is_stored_by_content_and_strength_defaults(modes):
    encoded, raw = png_base64()
    _, params, uploads = parse_generation({"prompt": "p", "init_image": encoded, "num_inference_steps": 10}, modes)
    assert params.init_image == f"inputs/{hashlib.sha256(raw).hexdigest()}.png"
    assert uploads == {params.init_image: raw}
    assert params.strength == 0.3
    _, again, _ = parse_generation(
        {"prompt": "p", "init_image": "data:image/png;base64," + encoded, "strength": 1}, modes
    )
    assert again.init_image == params.init_image and again.strength == 1.0


def test_init_image_needs_a_torch_mode(tmp_path):
    path = tmp_path / "modes.yaml"
    path.write_text(yaml.safe_dump({"modes": {"edge": {"model": "m", "backend": "onnx", "scheduler": "lcm"}}}))
    with pytest.raises(ApiError, match="runs on the onnx backend, which has no img2img") as caught:
        parse_generation({"prompt": "p", "init_image": png_base64()[0]}, load_modes(path))
    assert (caught.value.status, caught.value.field) == (400, "init_image")


def jpeg_base64() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def truncated_png() -> str:
    """A whole PNG's header and the first half of its pixel data."""
    raw = png_base64(256, 256)[1]
    return base64.b64encode(raw[: len(raw) // 2]).decode()


def bomb_png() -> str:
    """4096x4096 pixels of one colour: a small file that decodes to 48 MiB."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4096, 4096)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def huge_png_header() -> str:
    """A PNG signature and IHDR claiming 5000x10 pixels (the API reads no further)."""
    ihdr = struct.pack(">II", 5000, 10) + bytes([8, 2, 0, 0, 0])
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"init_image": 7}, "init_image must be a string"),
        ({"init_image": "not base64!"}, "not valid base64"),
        ({"init_image": jpeg_base64()}, "must be a PNG image"),
        ({"init_image": huge_png_header()}, "5000x10; each side must be 1 to 4096"),
        ({"init_image": "A" * (23 * 1024 * 1024)}, "larger than 16 MiB"),
        ({"init_image": truncated_png()}, "truncated or corrupt"),
        ({"init_image": bomb_png()}, "at most 4194304 pixels can be decoded here"),
        ({"strength": 0.5}, "strength applies to img2img only"),
        ({"init_image": png_base64()[0], "strength": 1.5}, "between 0.0 and 1.0"),
        ({"init_image": png_base64()[0], "strength": 0.2, "num_inference_steps": 4}, "runs no denoising step"),
    ],
)
def test_bad_img2img_fields_are_400_naming_the_field(modes, body, message):
    with pytest.raises(ApiError, match=message) as caught:
        parse_generation({"prompt": "p", **body}, modes)
    assert caught.value.status == 400
    assert caught.value.field == ("strength" if "strength" in body else "init_image")


@pytest.mark.parametrize(
    ("field", "ours"),
    [
        ("steps", "num_inference_steps"),
        ("width", "size"),
        ("height", "size"),
        ("cfg_scale", "guidance_scale"),
        ("sampler_name", "called sampler"),
        ("n_iter", "called n"),
        ("denoising_strength", "strength"),
    ],
)
def test_an_unknown_field_lists_every_accepted_one_and_hints_at_ours(modes, field, ours):
    with pytest.raises(ApiError) as caught:
        parse_generation({"prompt": "p", field: 1}, modes)
    error = caught.value
    assert (error.status, error.field) == (400, field)
    assert " superres_quality;" in error.message and " init_image, " in error.message
    assert f"{field!r}: " in error.message and ours in error.message.split(f"{field!r}: ")[1]


def test_every_field_error_is_reported_at_once(modes):
    body = {"prompt": 1, "mode": "full", "size": "1032x8", "num_inference_steps": 0, "seed": 1.5, "colour": "x"}
    with pytest.raises(ApiError) as caught:
        parse_generation(body, modes)
    errors = {e.field: e.message for e in caught.value.errors}
    assert list(errors) == ["prompt", "size", "num_inference_steps", "seed", "colour"]
    assert errors["size"] == "size '1032x8': mode 'full' allows at most 1024 pixels a side"
    assert errors["num_inference_steps"] == "num_inference_steps must be between 1 and 150, got 0"
    assert errors["seed"] == "seed must be a whole number between 0 and 4294967295"
    assert caught.value.field == "prompt" and all(m in caught.value.message for m in errors.values())
