"""Run a fixed-tile engine over a plane of any size: pad, tile with overlap, blend.

The plane is first padded by ``CONTEXT`` pixels on every side (mirrored), and up to
one tile where it is smaller than a tile, so border pixels see image-like context
instead of the convolutions' zeros.  Tiles overlap by ``OVERLAP`` input pixels; the
last tile of a row or column is aligned to the edge.  Where tiles overlap, each
tile's weight is ~0 for the ``MARGIN`` pixels next to its inner edge (pixels that
would see the tile's zero padding) and ramps linearly to 1 across the rest of the
overlap, so the weights of neighbours sum to 1 and no seam can show: with
MARGIN >= the model's receptive radius, the result equals running the model on the
whole padded plane at once.
"""

from __future__ import annotations

import numpy as np

from workers.superres.engine import SuperResEngine
from workers.superres.layout import RECEPTIVE_RADIUS

MARGIN = RECEPTIVE_RADIUS
OVERLAP = 2 * MARGIN + 6
CONTEXT = RECEPTIVE_RADIUS
_EPS = 1e-6


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering ``length`` (>= tile), the last one aligned to the end."""
    stride = tile - overlap
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _ramp(size: int, scale: int, inner_left: bool, inner_right: bool, overlap: int) -> np.ndarray:
    """1-D blend weights of one output tile of ``size`` pixels."""
    margin, span = MARGIN * scale, max(1, (overlap - 2 * MARGIN) * scale)
    distance = np.arange(size, dtype=np.float32) + 0.5
    weight = np.ones(size, dtype=np.float32)
    if inner_left:
        weight = np.minimum(weight, np.clip((distance - margin) / span, 0, 1))
    if inner_right:
        weight = np.minimum(weight, np.clip((size - distance - margin) / span, 0, 1))
    return np.maximum(weight, _EPS)


def upscale_plane(plane: np.ndarray, engine: SuperResEngine, overlap: int = OVERLAP) -> np.ndarray:
    """float32 H x W in [0, 1] -> float32 (H*scale) x (W*scale), clipped to [0, 1]."""
    height, width = plane.shape
    tile, scale = engine.tile, engine.scale
    if not 2 * MARGIN < overlap < tile:
        raise ValueError(f"overlap {overlap} must be between {2 * MARGIN} and the tile size {tile}")
    pad_bottom = max(0, tile - height - 2 * CONTEXT)
    pad_right = max(0, tile - width - 2 * CONTEXT)
    padded = np.pad(plane, ((CONTEXT, CONTEXT + pad_bottom), (CONTEXT, CONTEXT + pad_right)), mode="symmetric")
    rows = tile_starts(padded.shape[0], tile, overlap)
    cols = tile_starts(padded.shape[1], tile, overlap)
    out = np.zeros((padded.shape[0] * scale, padded.shape[1] * scale), dtype=np.float32)
    total = np.zeros_like(out)
    boxes = [(top, left) for top in rows for left in cols]
    size = tile * scale
    for first in range(0, len(boxes), engine.max_batch):
        batch = boxes[first : first + engine.max_batch]
        tiles = np.stack([padded[t : t + tile, left : left + tile] for t, left in batch])[:, None]
        results = engine.run(np.ascontiguousarray(tiles, dtype=np.float32))
        for (top, left), result in zip(batch, results[:, 0], strict=True):
            weight = np.outer(
                _ramp(size, scale, top > rows[0], top < rows[-1], overlap),
                _ramp(size, scale, left > cols[0], left < cols[-1], overlap),
            )
            y, x = top * scale, left * scale
            out[y : y + size, x : x + size] += result * weight
            total[y : y + size, x : x + size] += weight
    out /= total
    crop = CONTEXT * scale
    return np.clip(out[crop : crop + height * scale, crop : crop + width * scale], 0.0, 1.0)
