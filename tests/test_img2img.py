"""img2img on the torch backend: the SDXL refiner on its own, and any txt2img model given an init image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jobs.messages import GenerateJob, GenerateParams, ResolvedMode


def gradient(width: int = 80, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    y = np.linspace(255, 0, height, dtype=np.uint8)[:, None, None]
    return Image.fromarray(
        np.concatenate(
            [
                np.broadcast_to(x, (height, width, 1)),
                np.broadcast_to(y, (height, width, 1)),
                np.full((height, width, 1), 128, np.uint8),
            ],
            axis=2,
        )
    )


def make_job(model, seed: int = 3, strength: float | None = 0.5, steps: int = 6, scheduler: str = "default"):
    return GenerateJob(
        job_id=f"job-{seed}",
        mode=ResolvedMode(name="m", model_path=str(model), scheduler=scheduler, backend="torch"),
        params=GenerateParams(
            prompt="a fox",
            negative_prompt="",
            width=64,
            height=96,
            steps=steps,
            guidance=5.0,
            seed=seed,
            init_image=None if strength is None else "inputs/x.png",
            strength=strength,
        ),
    )


@pytest.fixture(scope="module")
def backend():
    from workers.torch_backend import TorchBackend

    return TorchBackend()


@pytest.mark.parametrize("fmt", ["diffusers", "single"])
def test_refiner_refines_an_image_deterministically(backend, family_models, fmt):
    model = family_models[("sdxl-refiner", fmt)]
    steps: list[tuple[int, int]] = []
    first = backend.generate(make_job(model), lambda i, n: steps.append((i, n)), init_image=gradient())
    again = backend.generate(make_job(model), lambda i, n: None, init_image=gradient())
    other = backend.generate(make_job(model, seed=4), lambda i, n: None, init_image=gradient())
    assert first.image.size == (64, 96)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))
    assert steps == [(1, 3), (2, 3), (3, 3)]  # strength 0.5 of 6 steps


def test_refiner_without_an_image_fails_saying_what_to_send(backend, family_models):
    from workers.errors import JobError

    with pytest.raises(JobError, match="only refines an image: send init_image"):
        backend.generate(make_job(family_models[("sdxl-refiner", "single")], strength=None), lambda i, n: None)


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_txt2img_models_take_an_init_image_and_stay_txt2img(backend, family_models, family):
    from workers.torch_backend import TorchBackend

    model = family_models[(family, "single")]
    light = backend.generate(make_job(model, strength=0.3), lambda i, n: None, init_image=gradient())
    strong = backend.generate(make_job(model, strength=0.9), lambda i, n: None, init_image=gradient())
    assert light.image.size == (64, 96)
    assert not np.array_equal(np.asarray(light.image), np.asarray(strong.image))
    after = backend.generate(make_job(model, strength=None), lambda i, n: None)
    fresh = TorchBackend().generate(make_job(model, strength=None), lambda i, n: None)
    assert np.array_equal(np.asarray(after.image), np.asarray(fresh.image))
