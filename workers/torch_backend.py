"""Generation on diffusers + torch: CUDA when present, else CPU."""

from __future__ import annotations

import logging
from typing import Any

from PIL import Image

from jobs.messages import GenerateJob
from workers.base import Generated, StepCallback
from workers.loader import load_pipeline
from workers.offline import force_offline
from workers.schedulers import make_scheduler, sampler_name

force_offline()

import diffusers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoPipelineForImage2Image, StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline  # noqa: E402

diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.disable_progress_bar()
log = logging.getLogger(__name__)
# Pipelines that take an image and no size: they run only as img2img.
IMAGE_ONLY_PIPELINES = (StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline)


class TorchBackend:
    """Keeps one pipeline loaded; loads another when a job names another model."""

    name = "torch"
    serves = "torch"

    def __init__(self) -> None:
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self._pipe = None
        self._base_scheduler = None
        self._model_path: str | None = None
        self._mode: str | None = None

    @property
    def loaded_mode(self) -> str | None:
        return self._mode

    def _load(self, job: GenerateJob) -> None:
        if self._model_path != job.mode.model_path:
            log.info(
                "job %s: loading %s for mode %s on %s", job.job_id, job.mode.model_path, job.mode.name, self.device
            )
            self._pipe = None
            pipe = load_pipeline(job.mode.model_path, self.dtype)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.device)
            self._base_scheduler = pipe.scheduler
            self._model_path = job.mode.model_path
        self._mode = job.mode.name

    def generate(self, job: GenerateJob, on_step: StepCallback, init_image: Image.Image | None = None) -> Generated:
        self._load(job)
        self._pipe.scheduler = make_scheduler(job.mode.scheduler, self._base_scheduler)
        p = job.params
        pipe, inputs = self._text_to_image(job) if init_image is None else self._image_to_image(job, init_image)

        def step_end(pipeline, step_index, timestep, callback_kwargs):
            on_step(step_index + 1, pipeline.num_timesteps)
            return callback_kwargs

        with torch.inference_mode():
            output = pipe(
                prompt=p.prompt,
                negative_prompt=p.negative_prompt or None,
                num_inference_steps=p.steps,
                guidance_scale=p.guidance,
                generator=torch.Generator(device="cpu").manual_seed(p.seed),
                callback_on_step_end=step_end,
                **inputs,
            )
        return Generated(image=output.images[0], sampler=sampler_name(job.mode.scheduler, self._base_scheduler))

    def _text_to_image(self, job: GenerateJob) -> tuple[Any, dict[str, Any]]:
        if isinstance(self._pipe, IMAGE_ONLY_PIPELINES):
            raise ValueError(
                f"mode {job.mode.name!r} runs {type(self._pipe).__name__} (an SDXL refiner), which only refines "
                "an image: send init_image (a base64 PNG) with the job"
            )
        return self._pipe, {"width": job.params.width, "height": job.params.height}

    def _image_to_image(self, job: GenerateJob, init_image: Image.Image) -> tuple[Any, dict[str, Any]]:
        """The img2img form of the loaded pipeline (sharing its modules) and the init image at the job's size."""
        pipe = self._pipe
        if not isinstance(pipe, IMAGE_ONLY_PIPELINES):
            pipe = AutoPipelineForImage2Image.from_pipe(pipe)
            pipe.set_progress_bar_config(disable=True)
        image = init_image.convert("RGB").resize((job.params.width, job.params.height), Image.Resampling.LANCZOS)
        return pipe, {"image": image, "strength": job.params.strength}
