"""diffusers' LCMScheduler in numpy: timesteps, boundary scalings, the step, the guidance embedding.

Every array is float32 on purpose: numpy 2 promotes float32 with a float64
scalar to float64 (NEP 50), and the graphs take float32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.edge.torch_noise import TorchGenerator

F32 = np.float32
SIGMA_DATA = 0.5

# LCMScheduler's defaults, for keys a model's scheduler_config.json lacks.
LCM_DEFAULTS: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "original_inference_steps": 50,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "set_alpha_to_one": True,
    "prediction_type": "epsilon",
    "thresholding": False,
    "timestep_scaling": 10.0,
    "rescale_betas_zero_snr": False,
}


class ScheduleError(ValueError):
    """The model's scheduler config asks for something this LCM port does not do."""


@dataclass(frozen=True)
class LcmConfig:
    num_train_timesteps: int
    beta_start: float
    beta_end: float
    beta_schedule: str
    original_inference_steps: int
    clip_sample: bool
    clip_sample_range: float
    set_alpha_to_one: bool
    prediction_type: str
    timestep_scaling: float

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LcmConfig:
        """Read a scheduler config the way ``LCMScheduler.from_config`` does: its own defaults fill gaps."""
        values = {**LCM_DEFAULTS, **{k: v for k, v in raw.items() if k in LCM_DEFAULTS}}
        unsupported = [k for k in ("trained_betas", "thresholding", "rescale_betas_zero_snr") if values[k]]
        if unsupported:
            raise ScheduleError(f"scheduler config sets {unsupported}; the edge LCM pipeline supports none of them")
        if values["beta_schedule"] not in ("linear", "scaled_linear"):
            raise ScheduleError(f"beta_schedule {values['beta_schedule']!r} is not 'linear' or 'scaled_linear'")
        if values["prediction_type"] not in ("epsilon", "sample", "v_prediction"):
            raise ScheduleError(f"prediction_type {values['prediction_type']!r} is not one LCM knows")
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})

    @classmethod
    def from_file(cls, path: Path) -> LcmConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


class LcmSchedule:
    """One job's LCM schedule; ``step`` draws its noise from the job's generator."""

    def __init__(self, config: LcmConfig, steps: int) -> None:
        self.config = config
        self.alphas_cumprod = _alphas_cumprod(config)
        self.final_alpha_cumprod = F32(1.0) if config.set_alpha_to_one else self.alphas_cumprod[0]
        self.timesteps = lcm_timesteps(config, steps)

    def step(
        self, model_output: np.ndarray, index: int, sample: np.ndarray, generator: TorchGenerator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(next sample, denoised)`` after step ``index``; the last step adds no noise."""
        timestep = int(self.timesteps[index])
        last = index == len(self.timesteps) - 1
        previous = timestep if last else int(self.timesteps[index + 1])
        alpha = self.alphas_cumprod[timestep]
        alpha_prev = self.alphas_cumprod[previous] if previous >= 0 else self.final_alpha_cumprod
        beta, beta_prev = F32(1) - alpha, F32(1) - alpha_prev
        c_skip, c_out = boundary_scalings(timestep, self.config.timestep_scaling)

        kind = self.config.prediction_type
        if kind == "epsilon":
            original = (sample - np.sqrt(beta) * model_output) / np.sqrt(alpha)
        elif kind == "sample":
            original = model_output
        else:
            original = np.sqrt(alpha) * sample - np.sqrt(beta) * model_output
        if self.config.clip_sample:
            original = np.clip(original, -self.config.clip_sample_range, self.config.clip_sample_range)
        denoised = (c_out * original + c_skip * sample).astype(F32)
        if last:
            return denoised, denoised
        noise = generator.randn(model_output.shape)
        return (np.sqrt(alpha_prev) * denoised + np.sqrt(beta_prev) * noise).astype(F32), denoised


def lcm_timesteps(config: LcmConfig, steps: int) -> np.ndarray:
    """The ``steps`` timesteps LCMScheduler.set_timesteps picks from its distillation schedule."""
    original = config.original_inference_steps
    if not 1 <= steps <= original:
        raise ScheduleError(f"LCM takes between 1 and {original} steps (original_inference_steps), got {steps}")
    k = config.num_train_timesteps // original
    origin = (np.arange(1, original + 1) * k - 1)[::-1]
    indices = np.floor(np.linspace(0, len(origin), num=steps, endpoint=False)).astype(np.int64)
    return origin[indices].astype(np.int64)


def boundary_scalings(timestep: int, timestep_scaling: float) -> tuple[np.float32, np.float32]:
    """LCM's ``c_skip`` and ``c_out`` at a discrete timestep."""
    scaled = timestep * timestep_scaling
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2) ** 0.5
    return F32(c_skip), F32(c_out)


def guidance_embedding(guidance: float, dim: int) -> np.ndarray:
    """The ``[1, dim]`` sin/cos embedding of ``w = guidance - 1`` that LCM-distilled UNets take."""
    w = F32(guidance - 1.0) * F32(1000.0)
    half = dim // 2
    scale = F32(np.log(10000.0)) / F32(half - 1)
    # float32 operands as torch has them; exp, sin and cos rounded correctly (angles reach ~7000 rad,
    # where a one-ulp difference in float32 exp shows), which is what torch's kernels give.
    frequencies = np.exp((np.arange(half, dtype=F32) * -scale).astype(np.float64)).astype(F32)
    angles = (w * frequencies)[None, :].astype(np.float64)
    embedding = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if dim % 2:
        embedding = np.pad(embedding, ((0, 0), (0, 1)))
    return embedding.astype(F32)


def _alphas_cumprod(config: LcmConfig) -> np.ndarray:
    count = config.num_train_timesteps
    if config.beta_schedule == "scaled_linear":
        betas = np.linspace(config.beta_start**0.5, config.beta_end**0.5, count, dtype=F32) ** 2
    else:
        betas = np.linspace(config.beta_start, config.beta_end, count, dtype=F32)
    return np.cumprod(F32(1.0) - betas.astype(F32), dtype=F32)
