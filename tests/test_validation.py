"""Request validation, as pure functions (the HTTP side is in test_api_e2e.py)."""

from __future__ import annotations

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
    mode, params = parse_generation({"prompt": "p", "mode": "full", "seed": 3}, modes)
    assert mode.name == "full"
    assert (params.width, params.height, params.steps, params.guidance) == (768, 512, 20, 7.5)
    assert params.negative_prompt == "ugly" and params.seed == 3


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
    mode, params = parse_generation(body, modes)
    assert mode.name == "fast" and params.steps == 4 and 0 <= params.seed < 2**32


def test_explicit_values_are_kept(modes):
    _, params = parse_generation(
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
        ({"prompt": "p", "mode": 3}, 400, "mode"),
        ({"prompt": "p", "mode": "other"}, 404, "mode"),
    ],
)
def test_rejections(modes, body, status, field):
    with pytest.raises(ApiError) as caught:
        parse_generation(body, modes)
    assert (caught.value.status, caught.value.field) == (status, field)
