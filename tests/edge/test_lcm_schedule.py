"""The numpy LCM schedule against diffusers' LCMScheduler and pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import LCMScheduler, StableDiffusionPipeline

from workers.edge.lcm_schedule import LcmConfig, LcmSchedule, ScheduleError, guidance_embedding, lcm_timesteps
from workers.edge.torch_noise import TorchGenerator


@pytest.fixture(scope="module")
def scheduler_config(tiny_model) -> dict:
    import json

    return json.loads((tiny_model / "scheduler" / "scheduler_config.json").read_text())


def diffusers_lcm(config: dict) -> LCMScheduler:
    return LCMScheduler.from_config(config)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 8, 25, 50])
def test_timesteps_match_diffusers(scheduler_config, steps):
    reference = diffusers_lcm(scheduler_config)
    reference.set_timesteps(steps)
    assert lcm_timesteps(LcmConfig.from_dict(scheduler_config), steps).tolist() == reference.timesteps.tolist()


def test_alphas_match_diffusers(scheduler_config):
    ours = LcmSchedule(LcmConfig.from_dict(scheduler_config), 4)
    reference = diffusers_lcm(scheduler_config)
    np.testing.assert_allclose(ours.alphas_cumprod, reference.alphas_cumprod.numpy(), rtol=1e-6, atol=1e-7)
    assert ours.alphas_cumprod.dtype == np.float32
    assert ours.final_alpha_cumprod == pytest.approx(float(reference.final_alpha_cumprod))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_steps_match_diffusers_with_the_same_seeded_noise(scheduler_config, prediction_type):
    config = {**scheduler_config, "prediction_type": prediction_type}
    reference = diffusers_lcm(config)
    reference.set_timesteps(4)
    ours = LcmSchedule(LcmConfig.from_dict(config), 4)
    torch_generator, generator = torch.Generator().manual_seed(3), TorchGenerator(3)
    sample = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    torch_sample = torch.from_numpy(sample.copy())
    for index, timestep in enumerate(reference.timesteps):
        output = np.random.default_rng(index + 1).standard_normal(sample.shape).astype(np.float32)
        expected, expected_denoised = reference.step(
            torch.from_numpy(output), timestep, torch_sample, generator=torch_generator, return_dict=False
        )
        sample, denoised = ours.step(output, index, sample, generator)
        assert sample.dtype == np.float32 and denoised.dtype == np.float32
        np.testing.assert_allclose(denoised, expected_denoised.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(sample, expected.numpy(), rtol=1e-5, atol=1e-5)
        torch_sample = expected
    assert np.array_equal(sample, denoised), "the last step returns the denoised sample, no noise"


@pytest.mark.parametrize("guidance", [0.0, 1.0, 1.5, 2.0, 8.0])
@pytest.mark.parametrize("dim", [256, 7])
def test_guidance_embedding_matches_diffusers(guidance, dim):
    expected = StableDiffusionPipeline.get_guidance_scale_embedding(
        None, torch.tensor([guidance - 1.0]), embedding_dim=dim
    ).numpy()
    got = guidance_embedding(guidance, dim)
    assert got.dtype == np.float32 and got.shape == (1, dim)
    # Both sides compute float32 angles of up to ~7000 rad; torch's vectorised exp may round a frequency
    # one ulp apart from a correctly rounded one on some CPUs, which moves sin and cos by up to two
    # ulps of the angle. That is the precision the UNet gets either way.
    half = dim // 2
    angles = abs(guidance - 1.0) * 1000.0 * np.exp(-np.log(10000.0) / (half - 1) * np.arange(half))
    tolerance = np.concatenate([angles, angles]) * 2 * np.finfo(np.float32).eps + 1e-6
    assert np.all(np.abs(got[0, : 2 * half] - expected[0, : 2 * half]) <= tolerance)
    assert np.array_equal(got[0, 2 * half :], expected[0, 2 * half :])  # the odd dimension's zero pad


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"thresholding": True}, "supports none of them"),
        ({"rescale_betas_zero_snr": True}, "supports none of them"),
        ({"beta_schedule": "squaredcos_cap_v2"}, "beta_schedule"),
        ({"prediction_type": "flow"}, "prediction_type"),
    ],
)
def test_unsupported_configs_are_refused(scheduler_config, override, message):
    with pytest.raises(ScheduleError, match=message):
        LcmConfig.from_dict({**scheduler_config, **override})


def test_more_steps_than_the_distillation_schedule_are_refused(scheduler_config):
    with pytest.raises(ScheduleError, match="between 1 and 50"):
        LcmSchedule(LcmConfig.from_dict(scheduler_config), 51)
