"""Where an image carries A1111's infotext: a PNG's ``parameters`` text, a JPEG's (or WebP's) EXIF
UserComment.  Shared by the workers, which write it, and the API, which converts formats."""

from __future__ import annotations

import io

from PIL import Image

PARAMETERS = "parameters"
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
_UNICODE = b"UNICODE\x00"  # EXIF's character-code prefix; the text follows in UTF-16 big-endian, as A1111 writes it


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


def reencode(png: bytes, out_format: str, quality: int) -> bytes:
    """A PNG as JPEG or WebP (``quality`` 0-100), its infotext moved into EXIF; PNG bytes are returned as they are."""
    if out_format == "png":
        return png
    with Image.open(io.BytesIO(png)) as image:
        parameters = read_parameters(image)
        exif = jpeg_exif(parameters).tobytes() if parameters else b""
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=out_format.upper(), quality=quality, exif=exif)
    return buffer.getvalue()
