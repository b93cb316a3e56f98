"""LoRA: several per mode, both file formats, swapped without reloading the base, exact baseline after."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from jobs.messages import GenerateJob, GenerateParams, LoraRef, ResolvedMode
from tests.client import poll, result_bytes, submit


def job(model, loras=(), seed=3) -> GenerateJob:
    return GenerateJob(
        job_id=f"lora-test-{seed}",
        mode=ResolvedMode(name="m", model_path=str(model), scheduler="lcm", backend="torch", loras=tuple(loras)),
        params=GenerateParams(
            prompt="a fox", negative_prompt="", width=64, height=64, steps=4, guidance=1.0, seed=seed
        ),
    )


@pytest.fixture(scope="module")
def backend():
    from workers.torch_backend import TorchBackend

    return TorchBackend()


def pixels(backend, generate_job) -> np.ndarray:
    return np.asarray(backend.generate(generate_job, lambda i, n: None).image)


def test_loras_swap_without_base_reload_and_return_to_exact_baseline(backend, tiny_model, tiny_loras):
    style = LoraRef(str(tiny_loras["style.safetensors"]), 1.0, "style")
    detail = LoraRef(str(tiny_loras["detail-kohya.safetensors"]), 0.5, "detail")

    baseline = pixels(backend, job(tiny_model))
    loads = backend.model_loads
    styled = pixels(backend, job(tiny_model, [style]))
    both = pixels(backend, job(tiny_model, [style, detail]))
    weaker = pixels(backend, job(tiny_model, [style, LoraRef(detail.path, 0.25, "detail")]))
    again = pixels(backend, job(tiny_model))
    styled_again = pixels(backend, job(tiny_model, [style]))

    assert backend.model_loads == loads, "switching LoRAs must not reload the base model"
    assert not np.array_equal(baseline, styled)
    assert not np.array_equal(styled, both), "the kohya-format LoRA had no effect"
    assert not np.array_equal(both, weaker), "the strength had no effect"
    assert np.array_equal(baseline, again), "removing the LoRAs must give the baseline back exactly"
    assert np.array_equal(styled, styled_again)


def test_kohya_and_diffusers_files_load_alike(backend, tiny_model, tiny_loras):
    for name in tiny_loras:
        image = pixels(backend, job(tiny_model, [LoraRef(str(tiny_loras[name]), 1.0, "only")]))
        assert not np.array_equal(image, pixels(backend, job(tiny_model)))


def test_modes_with_and_without_loras_through_a_worker(api_stack):
    images = {}
    for key, mode in (("plain", "demo"), ("styled", "styled"), ("plain-again", "demo")):
        submitted = submit(api_stack.base, mode=mode, prompt="a fox", seed=11, size="64x64")
        assert poll(api_stack.base, submitted["id"])["status"] == "succeeded"
        images[key] = np.asarray(Image.open(io.BytesIO(result_bytes(api_stack.base, submitted["id"]))))
    assert not np.array_equal(images["plain"], images["styled"])
    assert np.array_equal(images["plain"], images["plain-again"])
