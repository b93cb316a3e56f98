"""Helpers for the super-resolution tests: test images, bad files, SR worker processes, models."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import redis
from PIL import Image

from jobs.keys import WORKERS_PATTERN
from tests.processes import Stack, wait_for


def picture(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A smooth picture with some texture (gradients + noise), in ``mode``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 127 + 60 * np.sin(xx / 7) * np.cos(yy / 5) + rng.normal(0, 12, (height, width))
    rgb = np.stack([base, np.roll(base, 3, axis=1), 255 - base], axis=-1)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    if mode == "RGBA":
        alpha = np.full((height, width), 255, dtype=np.uint8)
        alpha[:, : width // 2] = 0  # left half fully transparent
        image.putalpha(Image.fromarray(alpha))
        return image
    return image.convert(mode)


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims ``width`` x ``height`` but holds almost no data:
    the shape of a decompression bomb (a real one decompresses to that size)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def superres_heartbeats(client: redis.Redis) -> list[dict]:
    beats = []
    for key in client.scan_iter(WORKERS_PATTERN):
        beat = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        if beat.get("serves") == "superres":
            beats.append(beat)
    return beats


def start_superres_worker(stack: Stack, processes: int = 1, extra_env: dict[str, str] | None = None):
    """``python -m tasks.superres_worker`` with SR_NUM_WORKERS=processes; waits for every pool process's heartbeat."""
    env = {"SR_NUM_WORKERS": str(processes), **(extra_env or {})}
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    before = len(superres_heartbeats(client))
    process = stack.spawn("superres-worker", [sys.executable, "-m", "tasks.superres_worker"], env)

    def registered() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"superres worker exited early:\n{process.log_path.read_text()[-3000:]}")
        return len(superres_heartbeats(client)) >= before + processes

    wait_for(registered, 90, "the superres worker's heartbeats")
    return process


def run_to_exit(stack: Stack, argv: list[str], extra_env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    process = stack.spawn("oneshot", argv, extra_env)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return code, Path(process.log_path).read_text()


def random_model(folder: Path, seed: int = 1) -> tuple[Path, Path]:
    """A Sub-Pixel CNN with seeded random weights, saved as safetensors and zoo-layout ONNX."""
    import torch

    from workers.superres.layout import LAYERS
    from workers.superres.model import SubPixelCNN
    from workers.superres.train import save

    model = SubPixelCNN()
    model.init_weights(seed)
    generator = torch.Generator().manual_seed(seed)
    for layer in LAYERS:  # distinct non-zero biases
        bias = getattr(model, layer).bias
        bias.data = (torch.rand(bias.shape, generator=generator) - 0.5) / 10
    return save(model, folder)
