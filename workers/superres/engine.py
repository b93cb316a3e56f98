"""What every super-resolution engine offers the tiling pipeline, and how one is chosen.

An engine runs the model on a batch of Y-channel tiles of one fixed size; tiling,
padding, colour and alpha are the pipeline's (tiling.py, pipeline.py), so an engine
is a few lines.  Engines register in ENGINES by name.

Adding one: a class built as ``cls(config)`` with the SuperResEngine attributes, registered
as ``ENGINES["name"] = "module:Class"`` and chosen with SR_ENGINE=name.  ``run`` gets float32
NCHW tiles [N, 1, tile, tile] in [0, 1] and returns [N, 1, tile*scale, tile*scale]; with a
graph of batch 1, set ``max_batch = 1``.
SR workers build their engine in each pool process after the fork (tasks/superres_worker.py),
so a runtime context is never shared between processes; the pipeline calls ``run`` from one
thread.  ``preflight`` only checks what it can read (.onnx / .safetensors files); an .rknn is
opened only by the runtime, in the pool process.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from jobs.wording import choices


class SuperResEngine(Protocol):
    name: str
    tile: int  # input tile side in pixels (SR_INPUT_SIZE)
    scale: int  # output tile side / input tile side
    max_batch: int  # tiles per run() call

    def run(self, tiles: np.ndarray) -> np.ndarray:
        """float32 [N, 1, tile, tile] in [0, 1] -> float32 [N, 1, tile*scale, tile*scale]."""
        ...


class EngineError(RuntimeError):
    """The engine cannot start with this configuration; the message says what to change."""


@dataclass(frozen=True)
class EngineConfig:
    engine: str  # "torch", "onnx", or "auto" (by the model file's suffix)
    model_path: Path
    input_size: int
    output_size: int
    threads: int = 0  # CPU threads for the engine; 0: the library's default

    @property
    def scale(self) -> int:
        return self.output_size // self.input_size


# name -> "module:class"; each class is built as cls(config).
ENGINES = {
    "torch": "workers.superres.torch_engine:TorchEngine",
    "onnx": "workers.superres.onnx_engine:OnnxEngine",
    "rknn": "workers.superres.rknn_engine:RknnEngine",
}


# SR_ENGINE=auto picks the engine by the model file's suffix.
BY_SUFFIX = {".onnx": "onnx", ".safetensors": "torch", ".rknn": "rknn"}


def resolve_engine_name(config: EngineConfig) -> str:
    if config.engine != "auto":
        return config.engine
    return BY_SUFFIX.get(config.model_path.suffix, "torch")


def preflight(config: EngineConfig) -> str:
    """Check ``config`` without building an engine (safe before a worker pool forks); return the engine name."""
    name = resolve_engine_name(config)
    if name not in ENGINES:
        raise EngineError(f"SR_ENGINE={name!r} is not one of {choices(sorted(ENGINES))} or auto")
    if config.input_size < 8 or config.output_size % config.input_size or config.scale < 2:
        raise EngineError(
            f"SR_OUTPUT_SIZE={config.output_size} must be a whole multiple (2 or more) of "
            f"SR_INPUT_SIZE={config.input_size}, which must be at least 8"
        )
    if not config.model_path.is_file():
        raise EngineError(
            f"SR_MODEL_PATH={config.model_path} is not a file; point it at a .safetensors, .onnx or .rknn model"
        )
    if (name == "rknn") != (config.model_path.suffix == ".rknn"):
        raise EngineError(
            f"SR_ENGINE={name} cannot run SR_MODEL_PATH={config.model_path}: the rknn engine runs .rknn "
            "files (python -m workers.superres.convert_rknn) and only it does"
        )
    if config.model_path.suffix in (".onnx", ".safetensors"):
        _check_model_file(config)
    return name


def _check_model_file(config: EngineConfig) -> None:
    """The file holds a Sub-Pixel CNN x3 whose fixed dimensions agree with the settings."""
    from workers.superres.layout import SCALE
    from workers.superres.weights_io import onnx_shapes, read_weights

    try:
        read_weights(config.model_path)
    except (ValueError, OSError) as exc:
        raise EngineError(f"SR_MODEL_PATH: {exc}") from None
    if config.scale != SCALE:
        raise EngineError(
            f"the Sub-Pixel CNN upscales x{SCALE}: set SR_OUTPUT_SIZE to {SCALE} x SR_INPUT_SIZE "
            f"({SCALE * config.input_size}), not {config.output_size}"
        )
    if config.model_path.suffix == ".onnx":
        check_tile_dims(*onnx_shapes(config.model_path), config)


def check_tile_dims(input_shape: list, output_shape: list, config: EngineConfig) -> int:
    """The batch size a graph takes per call (8 when dynamic); raises EngineError when a fixed
    dimension disagrees with SR_INPUT_SIZE / SR_OUTPUT_SIZE."""
    if len(input_shape) != 4 or input_shape[1] not in (1, "1") or len(output_shape) != 4:
        raise EngineError(
            f"SR_MODEL_PATH={config.model_path}: expected one input [batch, 1, H, W] and one output "
            f"[batch, 1, H*3, W*3], found {input_shape} -> {output_shape}"
        )
    for dims, wanted, name in (
        (input_shape, config.input_size, "SR_INPUT_SIZE"),
        (output_shape, config.output_size, "SR_OUTPUT_SIZE"),
    ):
        fixed = [d for d in dims[2:] if isinstance(d, int)]
        if any(d != wanted for d in fixed):
            raise EngineError(
                f"SR_MODEL_PATH={config.model_path} has fixed tiles of {fixed[0]} pixels; set {name}={fixed[0]}"
            )
    return input_shape[0] if isinstance(input_shape[0], int) else 8


def load_engine(config: EngineConfig) -> SuperResEngine:
    """The engine ``config`` names, with its model loaded; raises EngineError saying what to fix."""
    name = preflight(config)
    module_name, class_name = ENGINES[name].split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    return engine_class(config)


def default_threads(workers: int) -> int:
    """CPU threads per engine so that ``workers`` engines on this machine do not oversubscribe it."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))
