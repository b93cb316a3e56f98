"""One converted graph on one ``RKNNLite`` object, with every refusal turned into RknnError.

Shared by the LCM pipeline's contexts (rknn_contexts.py) and the RKNN super-resolution
engine (workers/superres/rknn_engine.py).  Inputs are passed in the ONNX (NCHW) layout
with ``data_format`` said explicitly, since the runtime reads 4-D inputs as NHWC by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from workers.edge.model_folder import InputSpec


class RknnError(RuntimeError):
    """The RKNN runtime refused a call; the message names the graph and the return code."""


class RknnGraph:
    """One converted graph on one RKNNLite context."""

    def __init__(self, runtime: Any, name: str, path: Path, inputs: tuple[InputSpec, ...], core_mask: int) -> None:
        self.name = name
        self.path = Path(path)
        self._inputs = inputs
        # The runtime reads 4-D inputs as NHWC unless told; ours are in the ONNX (NCHW) layout.
        # data_format only matters for 4-D inputs, so the same value goes with every input.
        self._formats = ["nchw"] * len(inputs)
        self.context = runtime(verbose=False)
        code = self.context.load_rknn(str(path))
        if code != 0:
            self.close()
            raise RknnError(
                f"RKNN graph {name!r} ({path}): load_rknn returned {code}; "
                "check that the file is complete and was converted for this board's runtime version"
            )
        code = self.context.init_runtime(core_mask=core_mask)
        if code != 0:
            self.close()
            raise RknnError(
                f"RKNN graph {name!r} ({path}): init_runtime(core_mask={core_mask}) returned {code}; "
                "check the NPU driver (dmesg) and that the board has that core"
            )

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        return self._inputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        arrays = [np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype) for spec in self._inputs]
        outputs = self.context.inference(inputs=arrays, data_format=self._formats)
        if outputs is None:
            shapes = ", ".join(f"{s.name} {a.dtype}{list(a.shape)}" for s, a in zip(self._inputs, arrays, strict=True))
            raise RknnError(
                f"RKNN graph {self.name!r} ({self.path}): inference returned None for inputs {shapes}; "
                "the runtime log above says why (a size other than the one the model was converted for?)"
            )
        return [np.asarray(out, dtype=np.float32) for out in outputs]

    def close(self) -> None:
        if self.context is not None:
            self.context.release()
            self.context = None
