"""Every model family, as a diffusers folder and as an original-layout single file, through real processes.

API (gunicorn) -> Redis -> Celery worker -> workers.loader -> diffusers -> store, with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import redis
import requests
from PIL import Image

from tests.client import poll, result_bytes, submit


def finished_image(base: str, job: dict) -> np.ndarray:
    record = poll(base, job["id"])
    assert record["status"] == "succeeded", record
    image = Image.open(io.BytesIO(result_bytes(base, job["id"])))
    assert image.format == "PNG"
    return np.asarray(image)


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_folder_and_single_file_give_the_same_pixels(api_stack, family):
    request = {"prompt": "a red fox in snow", "size": "64x96", "seed": 5}
    # One at a time: jobs waiting together would run as one batch, equal only within float noise.
    folder, single, again, other = (
        finished_image(api_stack.base, submit(api_stack.base, mode=mode, **{**request, **extra}))
        for mode, extra in (
            (family, {}),
            (f"{family}-file", {}),
            (f"{family}-file", {}),
            (f"{family}-file", {"seed": 6}),
        )
    )
    assert folder.shape == (96, 64, 3)
    assert np.array_equal(folder, single)
    assert np.array_equal(single, again)
    assert not np.array_equal(single, other)


def init_png(width: int = 64, height: int = 48) -> str:
    """A base64 PNG: a red ramp left to right, a green ramp bottom to top."""
    pixels = np.full((height, width, 3), 90, np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)
    pixels[..., 1] = np.linspace(255, 0, height, dtype=np.uint8)[:, None]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_refiner_refines_an_init_image_in_both_formats(api_stack):
    request = {"prompt": "sharper", "init_image": init_png(), "size": "64x96", "seed": 9}
    jobs = [
        submit(api_stack.base, mode="sdxl-refiner", **request),
        submit(api_stack.base, mode="sdxl-refiner-file", **request),
        submit(api_stack.base, mode="sdxl-refiner-file", **{**request, "seed": 10}),
    ]
    assert jobs[0]["params"]["strength"] == 0.3
    key = jobs[0]["params"]["init_image"]
    assert key.startswith("inputs/") and (Path(api_stack.env["STORE_URL"]) / key).is_file()
    folder, single, other = (finished_image(api_stack.base, job) for job in jobs)
    assert folder.shape == (96, 64, 3)
    assert np.array_equal(folder, single)
    assert not np.array_equal(single, other)
    text = Image.open(io.BytesIO(result_bytes(api_stack.base, jobs[1]["id"]))).text["parameters"]
    assert text.endswith("Model: sdxl-refiner-file, Denoising strength: 0.3")


def test_refiner_without_an_init_image_fails_saying_what_to_send(api_stack):
    job = submit(api_stack.base, mode="sdxl-refiner-file", prompt="nothing to refine")
    record = poll(api_stack.base, job["id"])
    assert record["status"] == "failed"
    assert "send init_image" in record["error"]["message"]


def test_any_txt2img_mode_takes_an_init_image(api_stack):
    job = submit(api_stack.base, mode="sd15-file", prompt="repaint", init_image=init_png(), strength=0.75, seed=2)
    assert finished_image(api_stack.base, job).shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"init_image": "%%%"}, "init_image"),
        ({"init_image": base64.b64encode(b"GIF89a" + bytes(40)).decode()}, "init_image"),
        ({"strength": 0.5}, "strength"),
        ({"init_image": init_png(), "strength": 0.05}, "strength"),
    ],
)
def test_bad_img2img_request_is_400_and_stores_and_enqueues_nothing(api_stack, body, field):
    client = redis.Redis.from_url(api_stack.env["REDIS_URL"])
    jobs_before = len(list(client.scan_iter("dl:job:*")))
    inputs = Path(api_stack.env["STORE_URL"]) / "inputs"
    stored_before = sorted(inputs.iterdir()) if inputs.exists() else []
    response = requests.post(
        f"{api_stack.base}/api/jobs", json={"mode": "sdxl-refiner", "prompt": "x", **body}, timeout=10
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert client.llen("gen.torch.sdxl-refiner") == 0
    assert len(list(client.scan_iter("dl:job:*"))) == jobs_before
    assert (sorted(inputs.iterdir()) if inputs.exists() else []) == stored_before
