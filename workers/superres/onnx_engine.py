"""The Sub-Pixel CNN on ONNX Runtime: our exported model or the model zoo's super-resolution-10.

The zoo's graph takes ``input`` [batch_size, 1, 224, 224] and gives [batch_size, 1, 672, 672].
Fixed dimensions of the graph must agree with SR_INPUT_SIZE / SR_OUTPUT_SIZE; dynamic ones
take them.  A graph with a fixed batch of 1 gets one tile per call.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from workers.superres.engine import EngineConfig, EngineError, check_tile_dims


class OnnxEngine:
    name = "onnx"

    def __init__(self, config: EngineConfig) -> None:
        if config.model_path.suffix != ".onnx":
            raise EngineError(f"SR_ENGINE=onnx needs an .onnx model; SR_MODEL_PATH is {config.model_path}")
        options = ort.SessionOptions()
        if config.threads:
            options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(config.model_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise EngineError(f"SR_MODEL_PATH={config.model_path}: ONNX Runtime cannot load it: {exc}") from None
        [graph_input] = self.session.get_inputs()
        [graph_output] = self.session.get_outputs()
        self.input_name = graph_input.name
        self.tile = config.input_size
        self.scale = config.scale
        self.max_batch = check_tile_dims(graph_input.shape, graph_output.shape, config)

    def run(self, tiles: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(tiles, dtype=np.float32)})[0]
