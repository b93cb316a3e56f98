"""Read a .safetensors file's header (names, dtypes, shapes) without reading any tensor.

A file that is not safetensors says what it is instead: a pickle (a ``.ckpt`` renamed, say)
is named as one before its first bytes are read as a header length, and a file shorter than
its header's data offsets is "truncated", found before any loader reads it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100 * 1024 * 1024
# A pickle (protocol 2 to 5) starts with PROTO and its number; torch.save's zip format with a zip entry.
PICKLE_STARTS = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))
ZIP_START = b"PK\x03\x04"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl")
PICKLE_REFUSED = "refused: loading them can run code; convert them to .safetensors"


def pickle_message(path: Path) -> str:
    return f"{path}: a pickled checkpoint (torch.save / .ckpt format), {PICKLE_REFUSED}"


def looks_pickled(path: Path) -> bool:
    """Whether the file starts as torch.save writes (a pickle, or a zip holding one)."""
    with open(path, "rb") as handle:
        start = handle.read(4)
    return start.startswith(PICKLE_STARTS) or start == ZIP_START


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header: tensor name -> {dtype, shape, data_offsets}, plus ``__metadata__``."""
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", raw)
        if size > MAX_HEADER:
            raise ValueError(_not_safetensors(path, f"header of {size} bytes"))
        try:
            return json.loads(handle.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(_not_safetensors(path, str(exc))) from None


def _not_safetensors(path: Path, why: str) -> str:
    return pickle_message(path) if looks_pickled(path) else f"{path}: not a safetensors file ({why})"


def check_complete(path: Path) -> int:
    """The header's size in bytes, once the file is known to hold every byte its header names.

    A truncated file would otherwise fail deep in a loader (diffusers then reads the whole
    file as text to explain the failure, costing its size in memory).
    """
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
    header = read_header(path)
    try:
        ends = [int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"]
    except (KeyError, TypeError, ValueError, IndexError):
        raise ValueError(f"{path}: not a safetensors file (a tensor entry has no data_offsets)") from None
    expected, actual = 8 + size + max(ends, default=0), os.path.getsize(path)
    if actual < expected:
        raise ValueError(f"{path}: truncated: {actual} of {expected} bytes; copy the file again")
    return 8 + size


def parameter_count(path: Path) -> int:
    """How many numbers the file's tensors hold."""
    return sum(math.prod(t["shape"]) for name, t in read_header(path).items() if name != "__metadata__")
