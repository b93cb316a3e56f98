"""The ``onnx`` and ``rknn`` generation backends: the LCM pipeline on ONNX Runtime or on RKNNLite."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

from jobs.messages import GenerateJob
from workers.base import Generated, StepCallback
from workers.edge.graphs import OnnxGraph
from workers.edge.model_folder import open_edge_model
from workers.edge.pipeline import LcmPipeline
from workers.edge.rknn_contexts import RknnContexts
from workers.edge.rknnlite import STANDIN
from workers.schedulers import SAMPLER_NAMES

log = logging.getLogger(__name__)
SAMPLER = SAMPLER_NAMES["lcm"]


def _require_lcm(job: GenerateJob) -> None:
    if job.mode.scheduler != "lcm":
        raise ValueError(
            f"mode {job.mode.name!r} has scheduler {job.mode.scheduler!r}; the {job.mode.backend} backend runs "
            "the LCM pipeline only: set `scheduler: lcm` in modes.yaml"
        )


class OnnxBackend:
    """One set of ONNX Runtime sessions, for the model of the last job; one job at a time."""

    name = "onnx"
    serves = "onnx"
    concurrency = 1

    def __init__(self) -> None:
        self._pipeline: LcmPipeline | None = None
        self._model_path: str | None = None
        self._mode: str | None = None

    @property
    def loaded_mode(self) -> str | None:
        return self._mode

    def generate(self, job: GenerateJob, on_step: StepCallback) -> Generated:
        _require_lcm(job)
        if self._model_path != job.mode.model_path:
            log.info("job %s: loading ONNX graphs of %s for mode %s", job.job_id, job.mode.model_path, job.mode.name)
            self._pipeline = None
            model = open_edge_model(Path(job.mode.model_path), "onnx")
            self._pipeline = LcmPipeline(model, {n: OnnxGraph(n, p) for n, p in model.graph_paths.items()})
            self._model_path = job.mode.model_path
        self._mode = job.mode.name
        return Generated(image=self._pipeline.generate(job.params, on_step), sampler=SAMPLER)


class RknnBackend:
    """NUM_WORKERS RKNNLite contexts (one per NPU core), so the worker runs that many jobs at once."""

    name = "rknn"
    serves = "rknn"

    def __init__(self, num_workers: int, use_context_cfgs: bool) -> None:
        if STANDIN:
            log.warning("rknnlite is not installed: RKNN graphs run on the x86 stand-in (ONNX Runtime)")
        self.contexts = RknnContexts(num_workers, use_context_cfgs)
        self.concurrency = num_workers
        self._mode: str | None = None
        atexit.register(self.close)

    @property
    def loaded_mode(self) -> str | None:
        return self._mode

    def generate(self, job: GenerateJob, on_step: StepCallback) -> Generated:
        _require_lcm(job)
        pipeline = self.contexts.pipeline(open_edge_model(Path(job.mode.model_path), "rknn"))
        self._mode = job.mode.name
        return Generated(image=pipeline.generate(job.params, on_step), sampler=SAMPLER)

    def close(self) -> None:
        """Release every RKNNLite context; called at process exit."""
        self.contexts.close()
