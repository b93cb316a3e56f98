"""The ``init_image`` request field: a base64 PNG, decoded once at the API before admission.

The API checks the PNG signature and the size in the IHDR chunk, then decodes every
pixel (jobs/images.py, bounded by MAX_PIXELS), so a truncated file or a
decompression bomb is a 400 here and never reaches a worker.  The image travels to
the worker through the object store (``inputs/<sha256>.png``), never through the broker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from api.errors import ApiError
from jobs.images import ImageRejected, decode
from jobs.keys import input_object_key

FIELD = "init_image"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 16 * 1024 * 1024
MAX_SIDE = 4096
MAX_PIXELS = 2048 * 2048  # an init image is resized to the job's size; more pixels only cost memory
DATA_URL_PREFIX = "data:image/png;base64,"


@dataclass(frozen=True)
class InitImage:
    key: str  # where the worker finds it in the object store
    data: bytes


def parse_init_image(value: Any, field: str = FIELD) -> InitImage:
    """A checked ``init_image`` (plain base64 or a ``data:image/png;base64,`` URL), or a 400 naming the field;
    ``field`` names another image field checked the same way (``mask_image``)."""
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be a string: a base64-encoded PNG", field)
    text = value.removeprefix(DATA_URL_PREFIX)
    if len(text) > (MAX_BYTES + 2) // 3 * 4:
        raise ApiError(400, f"{field} is larger than {MAX_BYTES // (1024 * 1024)} MiB", field)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{field} is not valid base64; send the PNG file's bytes base64-encoded", field) from None
    if not data.startswith(PNG_SIGNATURE) or len(data) < 24 or data[12:16] != b"IHDR":
        raise ApiError(400, f"{field} must be a PNG image; convert other formats to PNG first", field)
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ApiError(400, f"{field} is {width}x{height}; each side must be 1 to {MAX_SIDE} pixels", field)
    try:
        decode(data, MAX_PIXELS)
    except ImageRejected as exc:
        raise ApiError(400, f"{field}: {exc}", field) from None
    return InitImage(input_object_key(hashlib.sha256(data).hexdigest()), data)
