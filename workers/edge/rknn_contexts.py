"""RKNNLite contexts of one worker process: NUM_WORKERS of them, one per NPU core.

A context is one RKNNLite per graph (text encoder, UNet, VAE decoder) on one
core mask, with the LCM pipeline over them.  RKNNLite objects must not be
shared across threads and must be made after any fork, so each context has an
owner thread, started after the fork, that makes, runs and releases its
RKNNLite objects; nothing else touches them.  A job thread is bound to one
context (NUM_WORKERS job threads at most) and holds its lock for the whole job,
its graph calls running on the owner thread.  A mode switch (``load_all``)
takes every context's lock, so it waits for running jobs to end, and loads the
model into all of them at once.  Core masks go round-robin NPU_CORE_0,
NPU_CORE_1, NPU_CORE_2 with USE_RKNN_CONTEXT_CFGS on, else every context gets
NPU_CORE_AUTO.

Every non-zero return code and every ``None`` from ``inference`` raises
RknnError naming the graph and the code: the job fails, the worker goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workers.edge.model_folder import EdgeModel, InputSpec
from workers.edge.pipeline import LcmPipeline
from workers.edge.rknn_graph import RknnError, RknnGraph
from workers.edge.rknnlite import RKNNLite

log = logging.getLogger(__name__)

# Called before contexts load a model: (model, how many contexts load it, bytes the others hold).
CapacityCheck = Callable[[EdgeModel, int, int], None]


def core_masks(runtime: Any) -> tuple[int, ...]:
    """The RK3588's three single-core masks, in round-robin order."""
    return (runtime.NPU_CORE_0, runtime.NPU_CORE_1, runtime.NPU_CORE_2)


class OwnerThread:
    """The one thread that makes, runs and releases a context's RKNNLite objects.

    A daemon thread with its own queue rather than a ThreadPoolExecutor: executors stop
    taking work when the interpreter starts exiting, before the atexit hook that
    releases the contexts runs.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        done: Future = Future()
        self._calls.put((function, args, done))
        return done

    def stop(self) -> None:
        self._calls.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            function, args, done = call
            try:
                done.set_result(function(*args))
            except BaseException as exc:  # handed to the caller, who raises it
                done.set_exception(exc)


class OwnedGraph:
    """A context's graph as the pipeline sees it: every call runs on the context's owner thread."""

    def __init__(self, graph: RknnGraph, owner: OwnerThread) -> None:
        self.name = graph.name
        self.graph = graph
        self._owner = owner

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        return self.graph.inputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self._owner.submit(self.graph.run, feeds).result()

    def close(self) -> None:
        self._owner.submit(self.graph.close).result()


@dataclass
class Context:
    index: int
    core_mask: int
    owner: OwnerThread
    lock: threading.Lock = field(default_factory=threading.Lock)  # held by the job using the context
    model_root: Path | None = None
    model_bytes: int = 0
    graphs: dict[str, RknnGraph] = field(default_factory=dict)
    pipeline: LcmPipeline | None = None

    def release(self) -> int:
        """Release the RKNNLite objects; runs on the owner thread."""
        released = len(self.graphs)
        for graph in self.graphs.values():
            graph.close()
        self.graphs, self.pipeline, self.model_root, self.model_bytes = {}, None, None, 0
        return released


class RknnContexts:
    def __init__(
        self,
        num_workers: int,
        use_context_cfgs: bool,
        runtime: Any = RKNNLite,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"NUM_WORKERS must be at least 1, got {num_workers}")
        self.num_workers = num_workers
        self.use_context_cfgs = use_context_cfgs
        self.runtime = runtime
        self._lock = threading.Lock()
        self._local = threading.local()
        self._contexts: list[Context] = []
        self._bound = 0

    def core_mask(self, index: int) -> int:
        if not self.use_context_cfgs:
            return self.runtime.NPU_CORE_AUTO
        masks = core_masks(self.runtime)
        return masks[index % len(masks)]

    @contextmanager
    def session(self, model: EdgeModel, check: CapacityCheck | None = None) -> Iterator[LcmPipeline]:
        """The calling thread's context, loaded with ``model`` if needed, held until the block ends."""
        context = self._context()
        with context.lock:
            self._load([context], model, check)
            yield context.pipeline

    def load_all(self, model: EdgeModel, check: CapacityCheck | None = None) -> None:
        """Load ``model`` into every context, each once the job it runs has ended (a mode switch)."""
        with self._lock:
            contexts = [self._make(index) for index in range(self.num_workers)]
        with ExitStack() as held:
            for context in contexts:  # in index order: a job holds one lock only, so no deadlock
                held.enter_context(context.lock)
            self._load(contexts, model, check)

    def contexts(self) -> list[Context]:
        with self._lock:
            return list(self._contexts)

    def close(self) -> int:
        """Release every context's RKNNLite objects on its owner thread and stop it; returns how many were released."""
        with self._lock:
            contexts, self._contexts = self._contexts, []
        released = sum(context.owner.submit(context.release).result() for context in contexts)
        for context in contexts:
            context.owner.stop()
        if released:
            log.info("released %d RKNNLite objects of %d RKNN contexts", released, len(contexts))
        return released

    def _load(self, contexts: list[Context], model: EdgeModel, check: CapacityCheck | None) -> None:
        """Load ``model`` into those of ``contexts`` (locked by the caller) that hold another one, in parallel."""
        stale = [context for context in contexts if context.model_root != model.root]
        if not stale:
            return
        if check:
            held = sum(context.model_bytes for context in self.contexts() if context not in stale)
            check(model, len(stale), held)
        futures = [context.owner.submit(self._load_one, context, model) for context in stale]
        errors = [future.exception() for future in futures]
        for error in errors:
            if error is not None:
                raise error

    def _load_one(self, context: Context, model: EdgeModel) -> None:
        """Runs on the context's owner thread."""
        context.release()
        log.info("RKNN context %d (core mask %d): loading %s", context.index, context.core_mask, model.root)
        try:
            for name, path in model.graph_paths.items():
                context.graphs[name] = RknnGraph(self.runtime, name, path, model.inputs[name], context.core_mask)
            owned = {name: OwnedGraph(graph, context.owner) for name, graph in context.graphs.items()}
            context.pipeline = LcmPipeline(model, owned)
        except Exception:
            context.release()
            raise
        context.model_root, context.model_bytes = model.root, model.graph_bytes()

    def _make(self, index: int) -> Context:
        """Context ``index``, made now if it does not exist yet; the caller holds ``self._lock``."""
        while len(self._contexts) <= index:
            made = len(self._contexts)
            owner = OwnerThread(f"rknn-context-{made}")
            self._contexts.append(Context(index=made, core_mask=self.core_mask(made), owner=owner))
        return self._contexts[index]

    def _context(self) -> Context:
        context = getattr(self._local, "context", None)
        if context is None:
            with self._lock:
                if self._bound >= self.num_workers:
                    raise RknnError(
                        f"thread {threading.current_thread().name} needs an RKNN context but all "
                        f"NUM_WORKERS={self.num_workers} are bound to other threads; run at most "
                        "NUM_WORKERS jobs at once in one process"
                    )
                context = self._make(self._bound)
                self._bound += 1
            self._local.context = context
        return context
