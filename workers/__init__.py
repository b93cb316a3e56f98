"""Backends that turn a job into pixels.  Nothing here knows about HTTP."""

from __future__ import annotations

from workers.base import Backend, Generated, StepCallback

__all__ = ["Backend", "Generated", "StepCallback", "load_backend"]


def load_backend(name: str) -> Backend:
    """The backend called ``name``; heavy libraries are imported only here."""
    if name == "torch":
        from workers.torch_backend import TorchBackend

        return TorchBackend()
    if name in ("onnx", "rknn"):
        from workers.edge.factory import edge_backend

        return edge_backend(name)
    if name == "noop":
        from workers.noop import NoopBackend

        return NoopBackend()
    if name == "timed":
        from workers.timed import TimedBackend

        return TimedBackend()
    raise ValueError(f"WORKER_BACKEND={name!r} is not one of 'torch', 'onnx', 'rknn', 'noop', 'timed'")
