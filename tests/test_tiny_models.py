"""The locally built tiny models: deterministic builds, deterministic pixels."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from workers.tiny_models import build_sd15


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.safetensors"))
    }


def test_same_seed_builds_identical_weights(tmp_path, tiny_model):
    rebuilt = build_sd15(tmp_path / "again", size="tiny")
    assert digest(rebuilt) == digest(tiny_model)
    other = build_sd15(tmp_path / "other", size="tiny", seed=99)
    assert digest(other) != digest(tiny_model)


def test_build_is_skipped_when_marker_matches(tiny_model):
    before = {p: p.stat().st_mtime_ns for p in tiny_model.rglob("*")}
    build_sd15(tiny_model, size="tiny")
    assert {p: p.stat().st_mtime_ns for p in tiny_model.rglob("*")} == before


def test_tokenizer_is_local_and_byte_level(tiny_model):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_model / "tokenizer", local_files_only=True)
    ids = tokenizer("a café").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == "acafé"


# What each modes.yaml scheduler name must be, from diffusers' own table of A1111 sampler names
# (docs: api/schedulers/overview, "A1111/k-diffusion"): the class, the settings that tell it apart
# from its Karras / SDE siblings, and the name the PNG infotext writes.
SCHEDULER_NAMES = {
    "lcm": ("LCMScheduler", {}, "LCM"),
    "euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpmpp_2m": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
        "DPM++ 2M",
    ),
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        "DPM++ 2M Karras",
    ),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
}


def tiny_job(model: Path, scheduler: str, seed: int = 1) -> GenerateJob:
    return GenerateJob(
        job_id=f"job-{scheduler}-{seed}",
        mode=ResolvedMode(name="t", model_path=str(model), scheduler=scheduler, backend="torch"),
        params=GenerateParams(
            prompt="a fox", negative_prompt="", width=64, height=64, steps=4, guidance=2.0, seed=seed
        ),
    )


@pytest.mark.parametrize("scheduler", ["default", *sorted(SCHEDULER_NAMES)])
def test_same_seed_same_pixels_through_the_backend(tiny_model, scheduler):
    from workers.torch_backend import TorchBackend

    backend = TorchBackend()
    steps: list[tuple[int, int]] = []
    first = np.asarray(backend.generate(tiny_job(tiny_model, scheduler, 1), lambda i, n: steps.append((i, n))).image)
    again = np.asarray(backend.generate(tiny_job(tiny_model, scheduler, 1), lambda i, n: None).image)
    other = np.asarray(backend.generate(tiny_job(tiny_model, scheduler, 2), lambda i, n: None).image)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert steps[-1][0] == steps[-1][1] and [s for s, _ in steps] == list(range(1, len(steps) + 1))


@pytest.fixture(scope="module")
def direct_pipeline(tiny_model):
    """The tiny model in plain diffusers, apart from the backend: the oracle for each scheduler's pixels."""
    import diffusers
    import torch

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_model, local_files_only=True, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("name", sorted(SCHEDULER_NAMES))
def test_each_scheduler_name_runs_the_a1111_sampler_it_names(tiny_model, direct_pipeline, name):
    """The backend's pixels are those of diffusers' class for that A1111 name, built from the model's
    own scheduler config; the PNG infotext names the sampler as A1111 does."""
    import diffusers
    import torch

    from workers.png import a1111_parameters, encode_png
    from workers.schedulers import make_scheduler
    from workers.torch_backend import TorchBackend

    class_name, settings, sampler = SCHEDULER_NAMES[name]
    base = direct_pipeline.scheduler
    made = make_scheduler(name, base)
    assert type(made).__name__ == class_name
    assert {key: made.config[key] for key in settings} == settings
    assert made.config.num_train_timesteps == base.config.num_train_timesteps
    assert made.config.beta_schedule == base.config.beta_schedule

    job = tiny_job(tiny_model, name)
    generated = TorchBackend().generate(job, lambda i, n: None)
    direct_pipeline.scheduler = getattr(diffusers, class_name).from_config(base.config, **settings)
    try:
        expected = direct_pipeline(
            prompt="a fox",
            num_inference_steps=4,
            guidance_scale=2.0,
            width=64,
            height=64,
            generator=torch.Generator(device="cpu").manual_seed(1),
        ).images[0]
    finally:
        direct_pipeline.scheduler = base
    assert np.array_equal(np.asarray(generated.image), np.asarray(expected))

    png = Image.open(io.BytesIO(encode_png(generated.image, a1111_parameters(job, generated.sampler))))
    assert re.search(r"\bSampler: ([^,]+),", png.text["parameters"]).group(1) == sampler


def test_scheduler_names_give_different_pixels(tiny_model):
    """No two names share a sampler: each gives its own image from the same seed."""
    from workers.torch_backend import TorchBackend

    backend = TorchBackend()
    images = {
        name: np.asarray(backend.generate(tiny_job(tiny_model, name), lambda i, n: None).image)
        for name in SCHEDULER_NAMES
    }
    names = sorted(images)
    same = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if np.array_equal(images[a], images[b])]
    assert same == []


def test_default_scheduler_is_the_models_own(tiny_model, direct_pipeline):
    from workers.torch_backend import TorchBackend

    generated = TorchBackend().generate(tiny_job(tiny_model, "default"), lambda i, n: None)
    assert generated.sampler == type(direct_pipeline.scheduler).__name__.removesuffix("Scheduler")
