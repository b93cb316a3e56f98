"""RKNNLite contexts of one worker process: NUM_WORKERS of them, one per NPU core, each bound to one thread.

A context is one RKNNLite per graph (text encoder, UNet, VAE decoder) on one
core mask, with the LCM pipeline over them.  RKNNLite objects must not be
shared across threads and must be made after any fork, so a context is made
lazily by the thread that first runs a job and only that thread uses it.  Core
masks go round-robin NPU_CORE_0, NPU_CORE_1, NPU_CORE_2 with
USE_RKNN_CONTEXT_CFGS on, else every context gets NPU_CORE_AUTO.

Every non-zero return code and every ``None`` from ``inference`` raises
RknnError naming the graph and the code: the job fails, the worker goes on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.edge.model_folder import EdgeModel
from workers.edge.pipeline import LcmPipeline
from workers.edge.rknn_graph import RknnError, RknnGraph
from workers.edge.rknnlite import RKNNLite

log = logging.getLogger(__name__)


def core_masks(runtime: Any) -> tuple[int, ...]:
    """The RK3588's three single-core masks, in round-robin order."""
    return (runtime.NPU_CORE_0, runtime.NPU_CORE_1, runtime.NPU_CORE_2)


@dataclass
class Context:
    index: int
    core_mask: int
    model_root: Path | None = None
    graphs: dict[str, RknnGraph] = field(default_factory=dict)
    pipeline: LcmPipeline | None = None

    def release(self) -> int:
        released = len(self.graphs)
        for graph in self.graphs.values():
            graph.close()
        self.graphs, self.pipeline, self.model_root = {}, None, None
        return released


class RknnContexts:
    def __init__(self, num_workers: int, use_context_cfgs: bool, runtime: Any = RKNNLite) -> None:
        if num_workers < 1:
            raise ValueError(f"NUM_WORKERS must be at least 1, got {num_workers}")
        self.num_workers = num_workers
        self.use_context_cfgs = use_context_cfgs
        self.runtime = runtime
        self._lock = threading.Lock()
        self._local = threading.local()
        self._contexts: list[Context] = []

    def core_mask(self, index: int) -> int:
        if not self.use_context_cfgs:
            return self.runtime.NPU_CORE_AUTO
        masks = core_masks(self.runtime)
        return masks[index % len(masks)]

    def pipeline(self, model: EdgeModel) -> LcmPipeline:
        """The calling thread's pipeline on ``model``, loading it into the thread's context if needed."""
        context = self._context()
        if context.model_root != model.root:
            context.release()
            log.info("RKNN context %d (core mask %d): loading %s", context.index, context.core_mask, model.root)
            try:
                for name, path in model.graph_paths.items():
                    context.graphs[name] = RknnGraph(self.runtime, name, path, model.inputs[name], context.core_mask)
                context.pipeline = LcmPipeline(model, context.graphs)
            except Exception:
                context.release()
                raise
            context.model_root = model.root
        return context.pipeline

    def contexts(self) -> list[Context]:
        with self._lock:
            return list(self._contexts)

    def close(self) -> int:
        """Release every context's RKNNLite objects; returns how many were released."""
        with self._lock:
            released = sum(context.release() for context in self._contexts)
            count = len(self._contexts)
        if released:
            log.info("released %d RKNNLite objects of %d RKNN contexts", released, count)
        return released

    def _context(self) -> Context:
        context = getattr(self._local, "context", None)
        if context is None:
            with self._lock:
                index = len(self._contexts)
                if index >= self.num_workers:
                    raise RknnError(
                        f"thread {threading.current_thread().name} needs an RKNN context but all "
                        f"NUM_WORKERS={self.num_workers} are bound to other threads; run at most "
                        "NUM_WORKERS jobs at once in one process"
                    )
                context = Context(index=index, core_mask=self.core_mask(index))
                self._contexts.append(context)
            self._local.context = context
        return context
