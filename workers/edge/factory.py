"""Build the ``onnx`` or ``rknn`` backend from the environment (config.py)."""

from __future__ import annotations

from config import Settings
from workers.base import Backend


def edge_backend(name: str) -> Backend:
    from workers.edge.backends import OnnxBackend, RknnBackend

    if name == "onnx":
        return OnnxBackend()
    settings = Settings.from_env()
    return RknnBackend(settings.num_workers, settings.use_rknn_context_cfgs)
