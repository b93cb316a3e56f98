"""Read a .safetensors file's header (names, dtypes, shapes) without reading any tensor."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100 * 1024 * 1024


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header: tensor name -> {dtype, shape, data_offsets}, plus ``__metadata__``."""
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", raw)
        if size > MAX_HEADER:
            raise ValueError(f"{path}: not a safetensors file (header of {size} bytes)")
        try:
            return json.loads(handle.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a safetensors file ({exc})") from None


def parameter_count(path: Path) -> int:
    """How many numbers the file's tensors hold."""
    return sum(math.prod(t["shape"]) for name, t in read_header(path).items() if name != "__metadata__")
