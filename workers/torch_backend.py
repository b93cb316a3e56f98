"""Generation on diffusers + torch: CUDA when present, else CPU."""

from __future__ import annotations

import bisect
import logging
import time
from typing import Any

from PIL import Image

from jobs.messages import GenerateJob, ResolvedMode
from workers.base import Generated, StepCallback
from workers.errors import CapacityError, JobError
from workers.loader import load_pipeline
from workers.memory import MIB, file_mappings, host_memory, memory_limit, model_file_parameters, process_rss
from workers.model_cache import ModelCache, cache_budget
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
    Replaced models stay in a host RAM cache (workers/model_cache.py) while it has room.
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
        self._cache: ModelCache[Any] = ModelCache()
        self._mode_models: dict[str, str] = {}  # every mode this worker ran -> its model path
        self.model_loads = 0  # from disk
        self.cache_hits = 0

    @property
    def loaded_mode(self) -> str | None:
        return self._mode

    def cached_modes(self) -> set[str]:
        """Modes whose model is in host RAM: cached, or loaded (a LoRA swap away), by the modes seen using it."""
        in_ram = {entry.key for entry in self._cache.entries()}
        if self._model_path and self.device == "cpu":
            in_ram.add(self._model_path)
        # The heartbeat and router threads call this while a job may add a mode: list() copies in one step.
        return {name for name, path in list(self._mode_models.items()) if path in in_ram}

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        """Load the mode's model (unless loaded) and LoRAs; return the seconds it took.

        The model comes from the host cache when it is there, else from disk; the model it
        replaces goes into the cache in its base state (no LoRAs, its own scheduler).
        """
        began = time.perf_counter()
        self._mode_models[mode.name] = mode.model_path
        if self._model_path != mode.model_path:
            if mode.model_path in self._cache:
                pipe = self._from_cache(mode, job_id)
            else:
                pipe = self._from_disk(mode, job_id)
            size = _module_bytes(pipe)
            self._retire(job_id, size)
            self._pipe = pipe
            self._base_scheduler = pipe.scheduler
            self._model_path = mode.model_path
            self._model_bytes = size
            self._adapters, self._lora_state = {}, ()
        self._apply_loras(mode, job_id)
        self._mode = mode.name
        return time.perf_counter() - began

    def _from_disk(self, mode: ResolvedMode, job_id: str) -> Any:
        self._check_capacity(mode, job_id)
        log.info("job %s: loading %s for mode %s from disk on %s", job_id, mode.model_path, mode.name, self.device)
        pipe = load_pipeline(mode.model_path, self.dtype)
        pipe.set_progress_bar_config(disable=True)
        self.model_loads += 1
        return pipe.to(self.device)

    def _from_cache(self, mode: ResolvedMode, job_id: str) -> Any:
        size = self._cache.peek(mode.model_path).size
        if self.device == "cuda" and size > self._device_free():
            self._refuse(mode, size, self._device_free())
        log.info(
            "job %s: loading %s for mode %s from the host cache (%d bytes) on %s",
            job_id,
            mode.model_path,
            mode.name,
            size,
            self.device,
        )
        self.cache_hits += 1
        return self._cache.take(mode.model_path).to(self.device)

    def _retire(self, job_id: str, incoming: int) -> None:
        """Keep the outgoing model in the host cache, in its base state, if the budget has room."""
        pipe, path, size, scheduler = self._pipe, self._model_path, self._model_bytes, self._base_scheduler
        self._pipe = self._base_scheduler = None
        if pipe is None:
            return
        if self._lora_state:
            pipe.unload_lora_weights()
        pipe.scheduler = scheduler
        mapped = _file_backed(pipe) if self.device == "cpu" else []
        # On a CPU the model is in host RAM already, but for the weights still mapped from their file.
        on_host = size - sum(t.numel() * t.element_size() for t in mapped) if self.device == "cpu" else 0
        budget = cache_budget(self._cache.bytes + on_host, held=incoming)
        if size > budget:
            log.info("job %s: dropping %s: %d bytes exceed the host cache budget of %d", job_id, path, size, budget)
            return
        self._cache.shrink(budget - size, job_id)
        for tensor in mapped:  # the OS may drop a mapped file's pages and read them from disk again
            tensor.data = tensor.data.clone()
        self._cache.put(path, pipe.to("cpu"), size, budget, job_id)

    def _device_free(self) -> int:
        return torch.cuda.mem_get_info()[0] if self.device == "cuda" else host_memory()[1]

    def _check_capacity(self, mode: ResolvedMode, job_id: str) -> None:
        """Refuse a model that cannot fit, else evict cached models (oldest first) until it fits.

        Every cached byte counts against MEMORY_LIMIT_MB; on a CPU evicting also frees host memory.
        """
        needed = model_file_parameters(mode.model_path) * self._element_size
        device_free = self._device_free()
        evictable = self._cache.bytes
        best = self._free_bytes(device_free + (evictable if self.device == "cpu" else 0), cached=0)
        if needed > best:
            self._refuse(mode, needed, best)
        while needed > self._free_bytes(device_free, self._cache.bytes):
            released = self._cache.evict_oldest(job_id)
            device_free += released if self.device == "cpu" else 0

    def _free_bytes(self, device_free: int, cached: int) -> int:
        limit = memory_limit()
        return device_free if limit is None else min(device_free, limit - self._used_bytes() - cached)

    def _refuse(self, mode: ResolvedMode, needed: int, free: int) -> None:
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
        self._pipe.scheduler = make_scheduler(job.scheduler, self._base_scheduler)
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
        return Generated(image=output.images[0], sampler=sampler_name(job.scheduler, self._base_scheduler))

    def generate_batch(self, jobs: list[GenerateJob], on_step: StepCallback) -> list[Generated]:
        """Compatible txt2img jobs (GenerateParams.batch_key) as one pipeline call, each with its own
        prompt and seed: a generator per image, so each image starts from the same noise as alone."""
        first = jobs[0]
        self.prepare(first.mode, first.job_id)
        self._pipe.scheduler = make_scheduler(first.scheduler, self._base_scheduler)
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
        sampler = sampler_name(first.scheduler, self._base_scheduler)
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
            "cache": self._cache_report(),
        }

    def _cache_report(self) -> dict[str, Any]:
        entries = self._cache.entries()
        held = sum(entry.size for entry in entries)
        return {
            "budget_bytes": cache_budget(held, held=self._used_bytes()),
            "bytes": held,
            "evictions": self._cache.evictions,
            "hits": self.cache_hits,
            "entries": [  # most recently used first
                {"model": entry.key, "modes": self._modes_of(entry.key), "bytes": entry.size, "where": "host"}
                for entry in reversed(entries)
            ],
        }

    def _modes_of(self, model_path: str) -> list[str]:
        return sorted(name for name, path in list(self._mode_models.items()) if path == model_path)


def _file_backed(pipe: Any) -> list[torch.Tensor]:
    """Weights still in a mapping of their model file: safetensors loads lazily on a CPU."""
    ranges = file_mappings()
    starts = [start for start, _ in ranges]

    def mapped(tensor: torch.Tensor) -> bool:
        address = tensor.untyped_storage().data_ptr()
        index = bisect.bisect_right(starts, address) - 1
        return index >= 0 and address < ranges[index][1]

    return [
        tensor
        for component in pipe.components.values()
        if isinstance(component, torch.nn.Module)
        for tensor in (*component.parameters(), *component.buffers())
        if mapped(tensor)
    ]


def _module_bytes(pipe: Any) -> int:
    """Bytes of every weight the pipeline's modules hold."""
    return sum(
        p.numel() * p.element_size()
        for component in pipe.components.values()
        if isinstance(component, torch.nn.Module)
        for p in component.parameters()
    )
