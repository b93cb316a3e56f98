"""The ``onnx`` and ``rknn`` generation backends: the LCM pipeline on ONNX Runtime or on RKNNLite."""

from __future__ import annotations

import atexit
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from jobs.messages import GenerateJob, ResolvedMode
from workers.base import Generated, OneModeBackend, StepCallback
from workers.edge.graphs import OnnxGraph
from workers.edge.model_folder import EdgeModel, open_edge_model
from workers.edge.pipeline import LcmPipeline
from workers.edge.rknn_contexts import RknnContexts
from workers.edge.rknnlite import STANDIN
from workers.errors import CapacityError, JobError
from workers.memory import MIB, host_memory, memory_limit, process_rss
from workers.schedulers import SAMPLER_NAMES

log = logging.getLogger(__name__)
SAMPLER = SAMPLER_NAMES["lcm"]


def _check_mode(mode: ResolvedMode) -> None:
    if mode.scheduler != "lcm":
        raise JobError(
            f"mode {mode.name!r} has scheduler {mode.scheduler!r}; the {mode.backend} backend runs "
            "the LCM pipeline only: set `scheduler: lcm` in modes.yaml"
        )
    if mode.loras:
        raise JobError(
            f"mode {mode.name!r} has LoRAs; the {mode.backend} backend runs exported graphs and cannot apply "
            "them: fuse the LoRAs into the model before exporting it"
        )


def check_capacity(mode_name: str, model: EdgeModel, copies: int, held: int) -> None:
    """Raise CapacityError unless ``copies`` loads of ``model``'s graphs fit in host MemAvailable and,
    when set, in MEMORY_LIMIT_MB beside the ``held`` bytes of models that stay loaded."""
    needed = model.graph_bytes() * copies
    free = host_memory()[1]
    limit = memory_limit()
    if limit is not None:
        free = min(free, limit - held)
    if needed > free:
        what = f"{copies} copies of its graphs (one per RKNN context)" if copies > 1 else "its graphs"
        raise CapacityError(
            f"mode {mode_name!r} needs {needed / MIB:.0f} MiB for {what} but this worker has "
            f"{max(free, 0) / MIB:.0f} MiB free; free memory, run the mode on a bigger worker, "
            "or raise MEMORY_LIMIT_MB if it caps this worker"
        )


def _memory_report(device: str, loaded: list[dict[str, Any]]) -> dict[str, Any]:
    total, free = host_memory()
    return {
        "device": device,
        "total_bytes": total,
        "free_bytes": free,
        "used_bytes": total - free,
        "process_rss_bytes": process_rss(),
        "limit_bytes": memory_limit(),
        "models_bytes": sum(entry["bytes"] for entry in loaded),
        "models": loaded,
    }


class OnnxBackend(OneModeBackend):
    """One set of ONNX Runtime sessions, for the model of the last job; one job at a time."""

    name = "onnx"
    serves = "onnx"
    concurrency = 1

    def __init__(self) -> None:
        super().__init__()
        self._pipeline: LcmPipeline | None = None
        self._model_path: str | None = None
        self._model_bytes = 0

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        """Open the mode's ONNX graphs unless they are open; return the seconds it took."""
        _check_mode(mode)
        began = time.perf_counter()
        if self._model_path != mode.model_path:
            log.info("job %s: loading ONNX graphs of %s for mode %s", job_id, mode.model_path, mode.name)
            model = open_edge_model(Path(mode.model_path), "onnx")
            check_capacity(mode.name, model, 1, 0)  # the sessions it replaces are dropped before it loads
            self._pipeline, self._model_path = None, None
            self._pipeline = LcmPipeline(model, {n: OnnxGraph(n, p) for n, p in model.graph_paths.items()})
            self._model_path, self._model_bytes = mode.model_path, model.graph_bytes()
        self._mode = mode.name
        return time.perf_counter() - began

    def generate(self, job: GenerateJob, on_step: StepCallback) -> Generated:
        self.prepare(job.mode, job.job_id)
        return Generated(image=self._pipeline.generate(job.params, on_step), sampler=SAMPLER)

    def memory_report(self) -> dict[str, Any]:
        loaded = [{"mode": self._mode, "model": self._model_path, "bytes": self._model_bytes, "loras": []}]
        return _memory_report("cpu", loaded if self._model_path else [])


class RknnBackend(OneModeBackend):
    """NUM_WORKERS RKNNLite contexts (one per NPU core), so the worker runs that many jobs at once."""

    name = "rknn"
    serves = "rknn"

    def __init__(self, num_workers: int, use_context_cfgs: bool) -> None:
        super().__init__()
        if STANDIN:
            log.warning("rknnlite is not installed: RKNN graphs run on the x86 stand-in (ONNX Runtime)")
        self.contexts = RknnContexts(num_workers, use_context_cfgs)
        self.concurrency = num_workers
        atexit.register(self.close)

    def prepare(self, mode: ResolvedMode, job_id: str) -> float:
        """Load the mode's RKNN graphs into every context (once their running jobs end); return the seconds it took."""
        began = time.perf_counter()
        self.contexts.load_all(self._model(mode), partial(check_capacity, mode.name))
        self._mode = mode.name
        return time.perf_counter() - began

    def generate(self, job: GenerateJob, on_step: StepCallback) -> Generated:
        with self.contexts.session(self._model(job.mode), partial(check_capacity, job.mode.name)) as pipeline:
            self._mode = job.mode.name
            return Generated(image=pipeline.generate(job.params, on_step), sampler=SAMPLER)

    def memory_report(self) -> dict[str, Any]:
        loaded = []
        for context in self.contexts.contexts():
            pipeline = context.pipeline
            if pipeline is not None:
                loaded.append(
                    {
                        "mode": self._mode,
                        "model": str(pipeline.model.root),
                        "context": context.index,
                        "core_mask": context.core_mask,
                        "bytes": context.model_bytes,
                        "loras": [],
                    }
                )
        return _memory_report("npu", loaded)

    def close(self) -> None:
        """Release every RKNNLite context; called at process exit."""
        self.contexts.close()

    def _model(self, mode: ResolvedMode) -> EdgeModel:
        _check_mode(mode)
        return open_edge_model(Path(mode.model_path), "rknn")
