"""An x86 stand-in for ``rknnlite.api.RKNNLite`` that runs the same graphs on ONNX Runtime.

rknn-toolkit-lite2 installs only on aarch64.  This class has its surface and
the semantics the pipeline relies on, so the RKNN worker above it is the real
code in CI:

- the NPU core constants; ``load_rknn`` and ``init_runtime`` return 0 or -1
  and never raise; ``init_runtime`` refuses a core mask that is not one of them;
- ``inference`` returns a list of float32 arrays in the ONNX graph's layout, or
  ``None`` on bad input (never raises): wrong input count, not an ndarray,
  float64 or another unsupported dtype, a byte size that does not match the
  converted model's fixed input shape, an unknown ``data_format``;
- 4-D inputs are read as NHWC unless ``data_format`` says ``'nchw'`` (one value
  for all inputs or a list, one per input), as the real runtime does: an NCHW
  array passed without it is silently reinterpreted, not rejected;
- ``release()`` frees the context; inference after it returns ``None``.

How it finds the graph: a converted model for the stand-in is a small JSON
file with the ``.rknn`` suffix, written by ``python -m workers.edge.convert_rknn
--standin``.  It records what rknn-toolkit2 fixes at conversion (the input
names, dtypes and fixed shapes, the target platform) and names the ONNX graph
to run, relative to itself (``model.onnx`` beside ``unet/model.rknn``).  A real
RKNN binary is refused with -1: the stand-in cannot execute NPU code.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

STANDIN_FORMAT = "dreamlab-rknn-standin"
SUPPORTED_DTYPES = {"float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool"}
LAYOUTS = ("nchw", "nhwc")


class RKNNLite:
    NPU_CORE_AUTO = 0
    NPU_CORE_0 = 1
    NPU_CORE_1 = 2
    NPU_CORE_2 = 4
    NPU_CORE_0_1 = 3
    NPU_CORE_0_1_2 = 7
    CORE_MASKS = (NPU_CORE_AUTO, NPU_CORE_0, NPU_CORE_1, NPU_CORE_2, NPU_CORE_0_1, NPU_CORE_0_1_2)

    def __init__(self, verbose: bool = False, verbose_file: str | None = None) -> None:
        self.verbose = verbose
        self.core_mask: int | None = None
        self._model: dict[str, Any] | None = None
        self._graph_path: Path | None = None
        self._session = None

    def load_rknn(self, path: str) -> int:
        file = Path(path)
        try:
            model = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.error("E load_rknn: cannot load %s as a stand-in RKNN model: %s", path, exc)
            return -1
        if not isinstance(model, dict) or model.get("format") != STANDIN_FORMAT:
            log.error("E load_rknn: %s is not a stand-in RKNN model (made by workers.edge.convert_rknn)", path)
            return -1
        graph = file.parent / str(model.get("onnx", ""))
        if not graph.is_file():
            log.error("E load_rknn: %s names ONNX graph %s, which does not exist", path, graph)
            return -1
        self._model, self._graph_path = model, graph
        return 0

    def init_runtime(
        self, core_mask: int = NPU_CORE_AUTO, target: str | None = None, device_id: str | None = None
    ) -> int:
        if self._model is None:
            log.error("E init_runtime: no model loaded; call load_rknn first")
            return -1
        if core_mask not in self.CORE_MASKS:
            log.error("E init_runtime: invalid core mask %r", core_mask)
            return -1
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self._graph_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            log.error("E init_runtime: cannot initialise %s: %s", self._graph_path, exc)
            return -1
        self.core_mask = core_mask
        return 0

    def inference(
        self,
        inputs: Sequence[np.ndarray] | None = None,
        data_type: Any = None,
        data_format: str | Sequence[str] | None = None,
        inputs_pass_through: Any = None,
        get_frame_id: bool = False,
    ) -> list[np.ndarray] | None:
        try:
            feeds = self._feeds(inputs, data_format)
            if feeds is None:
                return None
            return [np.asarray(out, dtype=np.float32) for out in self._session.run(None, feeds)]
        except Exception as exc:
            log.error("E inference: %s: %s", type(exc).__name__, exc)
            return None

    def release(self) -> None:
        self._session = None
        self._model = None

    def _feeds(self, inputs: Any, data_format: Any) -> dict[str, np.ndarray] | None:
        if self._session is None or self._model is None:
            log.error("E inference: runtime not initialised; call load_rknn and init_runtime first")
            return None
        specs = self._model["inputs"]
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(specs):
            log.error("E inference: expected a list of %d inputs", len(specs))
            return None
        formats = data_format if isinstance(data_format, (list, tuple)) else [data_format] * len(specs)
        if len(formats) != len(specs) or any(f is not None and f not in LAYOUTS for f in formats):
            log.error("E inference: data_format must be None, 'nchw', 'nhwc' or a list of them, got %r", data_format)
            return None
        feeds = {}
        for index, (array, spec, layout) in enumerate(zip(inputs, specs, formats, strict=True)):
            feed = _input(index, array, spec, layout or "nhwc")
            if feed is None:
                return None
            feeds[spec["name"]] = feed
        return feeds


def _input(index: int, array: Any, spec: dict[str, Any], layout: str) -> np.ndarray | None:
    """The model's NCHW input from what was passed, or None (logged) where the real runtime refuses it."""
    if not isinstance(array, np.ndarray):
        log.error("E inference: input %d is %s, not a numpy array", index, type(array).__name__)
        return None
    if array.dtype.name not in SUPPORTED_DTYPES:
        log.error("E inference: input %d has unsupported dtype %s", index, array.dtype.name)
        return None
    shape = [int(d) for d in spec["shape"]]
    expected = math.prod(shape) * array.dtype.itemsize
    if array.nbytes != expected:
        log.error(
            "E inference: input %d (%s) size mismatch: got %d bytes, the model's %s %s input needs %d",
            index,
            spec["name"],
            array.nbytes,
            shape,
            array.dtype.name,
            expected,
        )
        return None
    flat = np.ascontiguousarray(array).reshape(-1)
    if len(shape) == 4 and layout == "nhwc":
        n, c, h, w = shape
        data = flat.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    else:
        data = flat.reshape(shape)
    return np.ascontiguousarray(data, dtype=spec["dtype"])
