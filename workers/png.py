"""PNG encoding with the A1111 ``parameters`` text chunk that image tools read."""

from __future__ import annotations

import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from jobs.messages import GenerateJob


def a1111_parameters(job: GenerateJob, sampler: str) -> str:
    p = job.params
    settings = (
        f"Steps: {p.steps}, Sampler: {sampler}, CFG scale: {p.guidance}, Seed: {p.seed}, "
        f"Size: {p.width}x{p.height}, Model: {job.mode.name}"
    )
    if p.init_image is not None:
        settings += f", Denoising strength: {p.strength}"
    return f"{p.prompt}\nNegative prompt: {p.negative_prompt}\n{settings}"


def encode_png(image: Image.Image, parameters: str) -> bytes:
    info = PngInfo()
    info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
