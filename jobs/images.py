"""Safe decoding of untrusted images, shared by the API (to reject bad uploads with a 4xx) and
the super-resolution worker (which checks again, so a bad file fails its job and nothing else).

Only a few raster formats are opened (never EPS or other formats that run external
programs); size is read from the header and checked before any pixel is decoded, so a
decompression bomb is rejected from its first bytes; truncated files fail on decode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
MAX_ASPECT = 32  # longest side / shortest side


class ImageRejected(ValueError):
    """The file cannot be used; the message says why and what would work."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    mode: str


def _open(data: bytes) -> Image.Image:
    if not data:
        raise ImageRejected("the file is empty (0 bytes)")
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:  # its text names the in-memory file object: nothing for a client
        raise ImageRejected(f"the file is not an image in a supported format ({', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the file is not an image in a supported format ({', '.join(FORMATS)}): {exc}") from None


def probe(data: bytes, max_input_pixels: int) -> ImageInfo:
    """Size and format from the header alone; rejects empty, zero-size, absurdly shaped or too large images."""
    with _open(data) as image:
        info = ImageInfo(image.width, image.height, image.format or "", image.mode)
    if info.width < 1 or info.height < 1:
        raise ImageRejected(f"the image has zero size ({info.width}x{info.height})")
    aspect = max(info.width, info.height) / min(info.width, info.height)
    if aspect > MAX_ASPECT:
        raise ImageRejected(
            f"the image is {info.width}x{info.height}, an aspect ratio of {aspect:.0f}:1; "
            f"at most {MAX_ASPECT}:1 is accepted"
        )
    if info.width * info.height > max_input_pixels:
        raise ImageRejected(
            f"the image is {info.width}x{info.height} ({info.width * info.height} pixels); "
            f"at most {max_input_pixels} pixels can be decoded here"
        )
    return info


def decode(data: bytes, max_input_pixels: int) -> Image.Image:
    """The first frame, fully decoded, EXIF orientation applied, in mode L, LA, RGB or RGBA."""
    probe(data, max_input_pixels)
    with _open(data) as image:
        try:
            image.load()
            frame = ImageOps.exif_transpose(image)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRejected(f"the image is truncated or corrupt: {exc}") from None
        return normalize_mode(frame)


def normalize_mode(image: Image.Image) -> Image.Image:
    """L, LA, RGB or RGBA; palette images keep their transparency as alpha."""
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image.copy()
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode == "PA":
        return image.convert("RGBA")
    if image.mode.startswith("I;16"):
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode in ("1", "I", "F"):
        return image.convert("L")
    if image.mode == "La":
        return image.convert("LA")
    if image.mode == "RGBa":
        return image.convert("RGBA")
    return image.convert("RGB")
