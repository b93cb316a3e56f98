"""Generation on diffusers + torch: CUDA when present, else CPU."""

from __future__ import annotations

import logging
import time
from typing import Any

from PIL import Image

from jobs.messages import GenerateJob, ResolvedMode
from workers.base import Generated, StepCallback
from workers.errors import CapacityError, JobError
from workers.loader import load_pipeline
from workers.memory import MIB, host_memory, memory_limit, model_file_parameters, process_rss
from workers.offline import force_offline
from workers.safetensors_header import parameter_count
from workers.schedulers import make_scheduler, sampler_name

force_offline()

import diffusers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import (  # noqa: E402
    AutoPipelineForImage2Image,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionXLImg2ImgPipeline,
)

diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.disable_progress_bar()
log = logging.getLogger(__name__)
# Pipelines that take an image and no size: they run only as img2img.
IMAGE_ONLY_PIPELINES = (StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline)


class TorchBackend:
    """Keeps one pipeline loaded; loads another when a job names another model.

    A new model is loaded beside the old one and replaces it only once loaded, so
    a switch that cannot fit (checked first) or fails leaves the old mode serving.
    """

    name = "torch"
    serves = "torch"

    def __init__(self) -> None:
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype = torch.float16 if self.device == "cuda" else torch.float32
        self._element_size = torch.tensor([], dtype=self.dtype).element_size()
        self._pipe = None
        self._base_scheduler = None
        self._model_path: str | None = None
        self._model_bytes = 0
        self._mode: str | None = None
        self._adapters: dict[str, tuple[str, int]] = {}  # adapter name -> (LoRA file, bytes)
        self._lora_state: tuple = ()
        self.model_loads = 0

    @property
    def loaded_mode(self) -> str | None:
        return self._mode

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        """Load the mode's model (unless loaded) and LoRAs; return the seconds it took."""
        began = time.perf_counter()
        if self._model_path != mode.model_path:
            self._check_capacity(mode)
            log.info("job %s: loading %s for mode %s on %s", job_id, mode.model_path, mode.name, self.device)
            pipe = load_pipeline(mode.model_path, self.dtype)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.device)
            self._base_scheduler = pipe.scheduler
            self._model_path = mode.model_path
            self._model_bytes = _module_bytes(pipe)
            self._adapters, self._lora_state = {}, ()
            self.model_loads += 1
        self._apply_loras(mode, job_id)
        self._mode = mode.name
        return time.perf_counter() - began

    def _free_bytes(self) -> int:
        if self.device == "cuda":
            free = torch.cuda.mem_get_info()[0]
        else:
            free = host_memory()[1]
        limit = memory_limit()
        return free if limit is None else min(free, limit - self._used_bytes())

    def _check_capacity(self, mode: ResolvedMode) -> None:
        needed = model_file_parameters(mode.model_path) * self._element_size
        free = self._free_bytes()
        if needed > free:
            serving = f"mode {self._mode!r} keeps serving" if self._mode else "nothing was loaded"
            raise CapacityError(
                f"mode {mode.name!r} needs {needed / MIB:.0f} MiB for its model but this worker has "
                f"{max(free, 0) / MIB:.0f} MiB free on {self.device} ({serving}); free memory, run the mode on "
                "a bigger worker, or raise MEMORY_LIMIT_MB if it caps this worker"
            )

    def _apply_loras(self, mode: ResolvedMode, job_id: str) -> None:
        """Make the mode's LoRAs, with their strengths, the only active ones; the base stays loaded."""
        state = tuple((lora.adapter_name, lora.path, lora.strength) for lora in mode.loras)
        if state == self._lora_state:
            return
        pipe = self._pipe
        wanted = {lora.adapter_name: lora for lora in mode.loras}
        if not wanted:
            pipe.unload_lora_weights()  # removes the peft layers too: the base model's exact output
            self._adapters = {}
        else:
            stale = [
                name for name, (path, _) in self._adapters.items() if name not in wanted or wanted[name].path != path
            ]
            if stale:
                pipe.delete_adapters(stale)
                for name in stale:
                    del self._adapters[name]
            for name, lora in wanted.items():
                if name not in self._adapters:
                    log.info("job %s: loading LoRA %s as %r", job_id, lora.path, name)
                    pipe.load_lora_weights(lora.path, adapter_name=name)
                    self._adapters[name] = (lora.path, parameter_count(lora.path) * self._element_size)
            pipe.set_adapters(list(wanted), adapter_weights=[lora.strength for lora in wanted.values()])
        self._lora_state = state

    def generate(self, job: GenerateJob, on_step: StepCallback, init_image: Image.Image | None = None) -> Generated:
        self.prepare(job.mode, job.job_id)
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

    def generate_batch(self, jobs: list[GenerateJob], on_step: StepCallback) -> list[Generated]:
        """Compatible txt2img jobs (GenerateParams.batch_key) as one pipeline call, each with its own
        prompt and seed: a generator per image, so each image starts from the same noise as alone."""
        first = jobs[0]
        self.prepare(first.mode, first.job_id)
        self._pipe.scheduler = make_scheduler(first.mode.scheduler, self._base_scheduler)
        pipe, inputs = self._text_to_image(first)
        p = first.params

        def step_end(pipeline, step_index, timestep, callback_kwargs):
            on_step(step_index + 1, pipeline.num_timesteps)
            return callback_kwargs

        with torch.inference_mode():
            output = pipe(
                prompt=[job.params.prompt for job in jobs],
                negative_prompt=[p.negative_prompt] * len(jobs) if p.negative_prompt else None,
                num_inference_steps=p.steps,
                guidance_scale=p.guidance,
                generator=[torch.Generator(device="cpu").manual_seed(job.params.seed) for job in jobs],
                callback_on_step_end=step_end,
                **inputs,
            )
        sampler = sampler_name(first.mode.scheduler, self._base_scheduler)
        return [Generated(image=image, sampler=sampler) for image in output.images]

    def _text_to_image(self, job: GenerateJob) -> tuple[Any, dict[str, Any]]:
        if isinstance(self._pipe, IMAGE_ONLY_PIPELINES):
            raise JobError(
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

    def _used_bytes(self) -> int:
        return self._model_bytes + sum(size for _, size in self._adapters.values())

    def memory_report(self) -> dict[str, Any]:
        """Device figures and what this worker holds, for heartbeats and /api/vram."""
        if self.device == "cuda":
            free, total = torch.cuda.mem_get_info()
        else:
            total, free = host_memory()
        loaded = []
        if self._model_path:
            loaded.append(
                {
                    "mode": self._mode,
                    "model": self._model_path,
                    "bytes": self._model_bytes,
                    "loras": [
                        {"adapter_name": name, "path": path, "bytes": size}
                        for name, (path, size) in self._adapters.items()
                    ],
                }
            )
        return {
            "device": self.device,
            "total_bytes": total,
            "free_bytes": free,
            "used_bytes": total - free,
            "process_rss_bytes": process_rss(),
            "limit_bytes": memory_limit(),
            "models_bytes": self._used_bytes(),
            "models": loaded,
        }


def _module_bytes(pipe: Any) -> int:
    """Bytes of every weight the pipeline's modules hold."""
    return sum(
        p.numel() * p.element_size()
        for component in pipe.components.values()
        if isinstance(component, torch.nn.Module)
        for p in component.parameters()
    )
