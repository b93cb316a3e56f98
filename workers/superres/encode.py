"""Encode an upscaled picture as PNG (text chunks such as A1111 ``parameters`` kept) or JPEG (the
``parameters`` in its EXIF UserComment)."""

from __future__ import annotations

import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from jobs.infotext import PARAMETERS, jpeg_exif
from jobs.wording import choices

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


def encode(image: Image.Image, out_format: str, quality: int, text: dict[str, str] | None = None) -> bytes:
    """PNG or JPEG bytes.  JPEG has no alpha: transparent areas are composited over white."""
    buffer = io.BytesIO()
    if out_format == "png":
        info = PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        image.save(buffer, format="PNG", pnginfo=info)
    elif out_format == "jpeg":
        parameters = (text or {}).get(PARAMETERS)
        exif = jpeg_exif(parameters).tobytes() if parameters else b""
        _flatten(image).save(buffer, format="JPEG", quality=quality, exif=exif)
    else:
        raise ValueError(f"out_format {out_format!r} is not one of {choices(sorted(CONTENT_TYPES))}")
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L"):
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def png_text(data: bytes) -> dict[str, str]:
    """The tEXt/iTXt chunks of a PNG (empty for other formats), to carry over to its upscale."""
    with Image.open(io.BytesIO(data)) as image:
        return {k: v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)}
