"""The Sub-Pixel CNN on an RK3588 NPU through ``RKNNLite`` (the x86 stand-in where rknnlite is absent).

A converted ``.rknn`` has one fixed input, [1, 1, SR_INPUT_SIZE, SR_INPUT_SIZE]
(``python -m workers.superres.convert_rknn`` makes it), so the engine runs one tile
per call.  The runtime object is made in the SR pool process that uses it (engines
are built after the fork) on NPU_CORE_AUTO: pool processes do not know their index,
so the driver picks the core.  Every non-zero return code and every ``None`` from
``inference`` raises RknnError naming the graph and the code, and the SR runner fails
the job with it: a model that does not load is logged when the pool process starts and
tried again by each job (a busy NPU may free up), whose failure names the code.
"""

from __future__ import annotations

import logging

import numpy as np

from workers.edge.model_folder import InputSpec
from workers.edge.rknn_graph import RknnError, RknnGraph
from workers.edge.rknnlite import STANDIN, RKNNLite
from workers.superres.engine import EngineConfig

log = logging.getLogger(__name__)
GRAPH = "superres"
INPUT = "input"  # the zoo's and our exporter's input name; RKNNLite takes inputs by position


class RknnEngine:
    name = "rknn"
    max_batch = 1

    def __init__(self, config: EngineConfig) -> None:
        if STANDIN:
            log.warning("rknnlite is not installed: the RKNN SR graph runs on the x86 stand-in (ONNX Runtime)")
        self.tile = config.input_size
        self.scale = config.scale
        self.path = config.model_path
        self._spec = InputSpec(INPUT, "float32", (1, 1, self.tile, self.tile))
        self._graph: RknnGraph | None = None
        try:
            self._load()
        except RknnError as exc:
            log.error("%s; every job will try to load it again and fail with this message", exc)

    def run(self, tiles: np.ndarray) -> np.ndarray:
        graph = self._load()
        side = self.tile * self.scale
        outputs = []
        for tile in tiles:
            [out] = graph.run({INPUT: tile[None]})
            if out.shape != (1, 1, side, side):
                raise RknnError(
                    f"RKNN graph {GRAPH!r} ({self.path}): output shape {list(out.shape)}, expected "
                    f"[1, 1, {side}, {side}]; set SR_INPUT_SIZE / SR_OUTPUT_SIZE to the size it was converted for"
                )
            outputs.append(out)
        return np.concatenate(outputs)

    def _load(self) -> RknnGraph:
        """The graph on its RKNNLite object, loaded now unless it is; raises RknnError naming the code."""
        if self._graph is None:
            self._graph = RknnGraph(RKNNLite, GRAPH, self.path, (self._spec,), RKNNLite.NPU_CORE_AUTO)
        return self._graph
