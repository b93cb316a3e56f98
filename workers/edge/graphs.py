"""The runtime interface under the LCM pipeline, and its ONNX Runtime implementation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from workers.edge.model_folder import InputSpec

ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


class Graph(Protocol):
    """One exported graph (text encoder, UNet or VAE decoder) on some runtime."""

    name: str

    @property
    def inputs(self) -> tuple[InputSpec, ...]: ...

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs, float32, in the ONNX graph's order and layout."""
        ...

    def close(self) -> None: ...


class OnnxGraph:
    """A graph on an ONNX Runtime CPU session."""

    def __init__(self, name: str, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.name = name
        self.path = Path(path)
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = tuple(
            InputSpec(i.name, ORT_DTYPES.get(i.type, i.type), tuple(d if d is not None else "?" for d in i.shape))
            for i in self._session.get_inputs()
        )

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        return self._inputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        ordered = {spec.name: np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype) for spec in self._inputs}
        return [np.asarray(out, dtype=np.float32) for out in self._session.run(None, ordered)]

    def close(self) -> None:
        self._session = None
