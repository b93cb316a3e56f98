"""Inpainting: on inpainting models (9 input channels) and on regular ones, in-process and through the API."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image, ImageFilter

from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from tests.client import poll, result_bytes, submit
from tests.test_img2img import gradient

SIZE = 64
BLUR = 2
# A Gaussian of radius r is cut off at about 3r here: beyond that from the mask's edge, the blurred mask is
# exactly 0 (kept) or 255 (repainted) after 8-bit rounding.
REACH = 3 * BLUR + 1


def square_mask() -> Image.Image:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[16:48, 16:48] = 255
    return Image.fromarray(mask)


def job(model, mask: bool = True, seed: int = 3, strength: float | None = 0.75) -> GenerateJob:
    return GenerateJob(
        job_id=f"inpaint-{seed}",
        mode=ResolvedMode(name="m", model_path=str(model), scheduler="default", backend="torch"),
        params=GenerateParams(
            prompt="a fox",
            negative_prompt="",
            width=SIZE,
            height=SIZE,
            steps=6,
            guidance=5.0,
            seed=seed,
            init_image="inputs/init.png" if strength else None,
            strength=strength,
            mask_image="inputs/mask.png" if mask else None,
            mask_blur=BLUR if mask else None,
        ),
    )


@pytest.fixture(scope="module")
def backend():
    from workers.torch_backend import TorchBackend

    return TorchBackend()


def regions(mask: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Pixels beyond the blur's reach outside the mask (kept) and inside it (repainted)."""
    grown = np.asarray(mask.filter(ImageFilter.MaxFilter(2 * REACH + 1))) > 0
    shrunk = np.asarray(mask.filter(ImageFilter.MinFilter(2 * REACH + 1))) > 0
    return ~grown, shrunk


MODELS = [
    ("sd15", "single", True),
    ("sdxl", "diffusers", True),
    ("sd15", "diffusers", False),
    ("sdxl", "single", False),
]


@pytest.mark.parametrize(("family", "fmt", "nine_channels"), MODELS)
def test_the_mask_alone_is_repainted(backend, family_models, inpainting_models, family, fmt, nine_channels):
    """Where the blurred mask is black the init image comes back exactly: the decoded image, a VAE round trip
    that on random tiny weights changes every pixel by tens of levels, is pasted through the mask only."""
    model = (inpainting_models if nine_channels else family_models)[(family, fmt)]
    init = gradient(SIZE, SIZE)
    out = backend.generate(job(model), lambda i, n: None, init_image=init, mask_image=square_mask())
    again = backend.generate(job(model), lambda i, n: None, init_image=init, mask_image=square_mask())
    assert (backend._pipe.unet.config.in_channels == 9) == nine_channels
    result, original = np.asarray(out.image).astype(int), np.asarray(init).astype(int)
    kept, repainted = regions(square_mask())
    assert np.array_equal(result[kept], original[kept])
    assert np.abs(result[repainted] - original[repainted]).mean() > 10
    assert np.array_equal(result, np.asarray(again.image))


def test_an_inpainting_model_refuses_other_jobs(backend, inpainting_models):
    from workers.errors import JobError

    model = inpainting_models[("sd15", "single")]
    with pytest.raises(JobError, match="serves inpainting jobs only: send init_image and mask_image"):
        backend.generate(job(model, mask=False, strength=None), lambda i, n: None)
    with pytest.raises(JobError, match="serves inpainting jobs only"):
        backend.generate(job(model, mask=False), lambda i, n: None, init_image=gradient(SIZE, SIZE))


def png64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_inpainting_through_the_api(api_stack):
    base = api_stack.base
    modes = requests.get(f"{base}/api/modes", timeout=30).json()
    described = {mode["name"]: mode for mode in modes["modes"]}
    assert described["sd15-inpaint"]["inpainting"] is True and described["sd15-file"]["inpainting"] is False

    plain = requests.post(f"{base}/api/jobs", json={"mode": "sd15-inpaint", "prompt": "a fox"}, timeout=30)
    assert plain.status_code == 400 and "serves inpainting jobs only" in plain.json()["error"]["message"]
    init = gradient(SIZE, SIZE)
    body = {"prompt": "a fox", "seed": 5, "init_image": png64(init), "mask_image": png64(square_mask())}
    for mode in ("sd15-inpaint", "sd15-file"):
        record = poll(base, submit(base, mode=mode, mask_blur=BLUR, **body)["id"])
        assert record["status"] == "succeeded", record
        assert record["params"]["mask_blur"] == BLUR and record["params"]["strength"] == 0.75
        result = np.asarray(Image.open(io.BytesIO(result_bytes(base, record["id"]))).convert("RGB")).astype(int)
        kept, repainted = regions(square_mask())
        assert np.array_equal(result[kept], np.asarray(init).astype(int)[kept]), mode
        assert np.abs(result[repainted] - np.asarray(init).astype(int)[repainted]).mean() > 10, mode


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"mask_image": "MASK"}, "mask_image", "mask_image needs an init_image"),
        ({"mask_blur": 3}, "mask_blur", "mask_blur applies to inpainting only"),
        ({"init_image": "INIT", "mask_image": "MASK", "mask_blur": 65}, "mask_blur", "between 0 and 64"),
        ({"init_image": "INIT", "mask_image": "not png"}, "mask_image", "mask_image is not valid base64"),
    ],
)
def test_bad_inpainting_fields_are_400_naming_the_field(tmp_path, extra, field, message):
    from api.errors import ApiError
    from api.validation import parse_generation
    from modes import load_modes

    path = tmp_path / "modes.yaml"
    path.write_text('modes: {plain: {model: m, default_size: "64x64"}}')
    images = {"INIT": png64(gradient(SIZE, SIZE)), "MASK": png64(square_mask())}
    body = {"prompt": "p", **{key: images.get(value, value) for key, value in extra.items()}}
    with pytest.raises(ApiError, match=message) as failure:
        parse_generation(body, load_modes(path))
    assert (failure.value.status, failure.value.field) == (400, field)
