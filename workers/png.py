"""AUTOMATIC1111's infotext: the ``parameters`` text of a PNG, or the EXIF UserComment of a JPEG.

Image tools (A1111's PNG Info, sd-parsers, Civitai) read the generation settings from it.
"""

from __future__ import annotations

import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from jobs.messages import GenerateJob
from jobs.model_hash import model_hash

PARAMETERS = "parameters"
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
_UNICODE = b"UNICODE\x00"  # EXIF's character-code prefix; the text follows in UTF-16 big-endian, as A1111 writes it


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


def jpeg_exif(parameters: str) -> Image.Exif:
    """EXIF holding ``parameters`` as its UserComment, for a JPEG."""
    exif = Image.Exif()
    exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = _UNICODE + parameters.encode("utf-16-be")
    return exif


def read_parameters(image: Image.Image) -> str | None:
    """The infotext an image carries (PNG text, or a JPEG's UserComment), or None."""
    text = getattr(image, "text", {}).get(PARAMETERS)
    if isinstance(text, str):
        return text
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, bytes) and comment.startswith(_UNICODE):
        return comment[len(_UNICODE) :].decode("utf-16-be", errors="replace")
    return None
