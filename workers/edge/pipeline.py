"""The LCM SD1.5 pipeline, written once in numpy over the Graph interface.

It reproduces diffusers' StableDiffusionPipeline with LCMScheduler, as the
torch backend runs it: the same tokenizer, timesteps, c_skip/c_out, and the
same noise for a seed (workers/edge/torch_noise.py), so a job gives the same
image on every backend within float rounding.  A UNet with a
``timestep_cond`` input (LCM-distilled) gets the embedding of
``w = guidance - 1`` and no classifier-free guidance; one without it gets
classifier-free guidance when guidance > 1, as diffusers does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

from jobs.messages import GenerateParams
from workers.base import StepCallback
from workers.edge.graphs import Graph
from workers.edge.lcm_schedule import LcmConfig, LcmSchedule, guidance_embedding
from workers.edge.model_folder import LATENT_CHANNELS, VAE_SCALE, EdgeModel
from workers.edge.torch_noise import TorchGenerator
from workers.offline import force_offline

F32 = np.float32


class SizeError(ValueError):
    """The job asks for a size the graphs cannot run."""


class LcmPipeline:
    def __init__(self, model: EdgeModel, graphs: Mapping[str, Graph]) -> None:
        force_offline()
        from transformers import CLIPTokenizer

        self.model = model
        self.graphs = graphs
        self.tokenizer = CLIPTokenizer.from_pretrained(str(model.tokenizer_dir), local_files_only=True)
        self.schedule_config = LcmConfig.from_file(model.scheduler_config)
        unet_inputs = {spec.name: spec for spec in graphs["unet"].inputs}
        cond = unet_inputs.get("timestep_cond")
        self.time_cond_dim = int(cond.shape[-1]) if cond else None
        self._ids_dtype = graphs["text_encoder"].inputs[0].dtype

    def generate(self, params: GenerateParams, on_step: StepCallback) -> Image.Image:
        self._check_size(params.width, params.height)
        generator = TorchGenerator(params.seed)
        schedule = LcmSchedule(self.schedule_config, params.steps)
        guided = self.time_cond_dim is None and params.guidance > 1.0
        text = self.encode(params.prompt)
        uncond = self.encode(params.negative_prompt) if guided else None
        extra = {}
        if self.time_cond_dim is not None:
            extra["timestep_cond"] = guidance_embedding(params.guidance, self.time_cond_dim)

        latents = generator.randn((1, LATENT_CHANNELS, params.height // VAE_SCALE, params.width // VAE_SCALE))
        denoised = latents
        total = len(schedule.timesteps)
        for index, timestep in enumerate(schedule.timesteps):
            noise = self._unet(latents, timestep, text, extra)
            if uncond is not None:
                noise_uncond = self._unet(latents, timestep, uncond, extra)
                noise = (noise_uncond + F32(params.guidance) * (noise - noise_uncond)).astype(F32)
            latents, denoised = schedule.step(noise, index, latents, generator)
            on_step(index + 1, total)
        return self.decode(denoised)

    def encode(self, prompt: str) -> np.ndarray:
        ids = self.tokenizer(
            prompt,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="np",
        ).input_ids
        return self.graphs["text_encoder"].run({"input_ids": ids.astype(self._ids_dtype)})[0].astype(F32)

    def decode(self, latents: np.ndarray) -> Image.Image:
        scaled = (latents / F32(self.model.vae_scaling_factor)).astype(F32)
        image = self.graphs["vae_decoder"].run({"latent_sample": scaled})[0]
        pixels = np.clip(image[0] / F32(2) + F32(0.5), 0, 1).transpose(1, 2, 0)
        return Image.fromarray((pixels * F32(255)).round().astype(np.uint8))

    def _unet(self, latents: np.ndarray, timestep: int, text: np.ndarray, extra: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {
            "sample": latents,
            "timestep": np.asarray([timestep], dtype=np.int64),
            "encoder_hidden_states": text,
            **extra,
        }
        return self.graphs["unet"].run(feeds)[0].astype(F32)

    def _check_size(self, width: int, height: int) -> None:
        if width % VAE_SCALE or height % VAE_SCALE:
            raise SizeError(f"size {width}x{height}: width and height must be multiples of {VAE_SCALE}")
        fixed = self.model.fixed_size
        if fixed and fixed != (width, height):
            raise SizeError(
                f"the graphs in {self.model.root} were converted for {fixed[0]}x{fixed[1]} only, "
                f"not {width}x{height}; set the mode's default_size to {fixed[0]}x{fixed[1]} or convert again"
            )
