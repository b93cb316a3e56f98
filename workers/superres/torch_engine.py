"""The Sub-Pixel CNN on torch: CUDA when present, else CPU."""

from __future__ import annotations

import numpy as np
import torch

from workers.superres.engine import EngineConfig, EngineError
from workers.superres.layout import SCALE
from workers.superres.model import SubPixelCNN
from workers.superres.weights_io import read_weights


class TorchEngine:
    name = "torch"

    def __init__(self, config: EngineConfig) -> None:
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.set_flush_denormal(True)  # denormal activations are many times slower on CPU
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tile = config.input_size
        self.scale = SCALE
        self.max_batch = 8
        try:
            weights = read_weights(config.model_path)
        except (ValueError, OSError) as exc:
            raise EngineError(f"SR_MODEL_PATH: {exc}") from None
        model = SubPixelCNN()
        model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items()})
        self.model = model.eval().to(self.device)

    def run(self, tiles: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(tiles).to(self.device)).float().cpu().numpy()
