"""AUTOMATIC1111's infotext as the workers write it, and the PNG that carries it (jobs/infotext.py).

Image tools (A1111's PNG Info, sd-parsers, Civitai) read the generation settings from it.
"""

from __future__ import annotations

import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from jobs.infotext import PARAMETERS
from jobs.messages import GenerateJob
from jobs.model_hash import model_hash


def a1111_parameters(job: GenerateJob, sampler: str) -> str:
    """The infotext of one image of ``job``, in A1111's layout and key names."""
    p = job.params
    fields = {
        "Steps": p.steps,
        "Sampler": sampler,
        "CFG scale": p.guidance,
        "Seed": p.seed,
        "Size": f"{p.width}x{p.height}",
        "Model hash": model_hash(job.mode.model_path),
        "Model": job.mode.name,
        "Denoising strength": p.strength if p.init_image is not None else None,
    }
    lines = [p.prompt, *([f"Negative prompt: {p.negative_prompt}"] if p.negative_prompt else [])]
    return "\n".join([*lines, ", ".join(f"{key}: {value}" for key, value in fields.items() if value is not None)])


def postprocess_parameters(parameters: str | None, scale: int, upscaler: str) -> str:
    """``parameters`` with the upscale said as A1111's extras say it (alone when the input had none)."""
    said = f"Postprocess upscale by: {scale}, Postprocess upscaler: {upscaler}"
    return f"{parameters}, {said}" if parameters else said


def encode_png(image: Image.Image, parameters: str) -> bytes:
    info = PngInfo()
    info.add_text(PARAMETERS, parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()
