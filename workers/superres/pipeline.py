"""Upscale a picture: the model on the Y channel, bicubic on Cb/Cr and alpha, ``passes`` times.

Input modes are L, LA, RGB and RGBA (jobs/images.py normalizes every other mode to
one of these when it decodes); the output has the same mode, so alpha survives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from workers.superres.engine import SuperResEngine
from workers.superres.tiling import upscale_plane

PassCallback = Callable[[int, int], None]


def upscale_luma(channel: Image.Image, engine: SuperResEngine) -> Image.Image:
    plane = np.asarray(channel, dtype=np.float32) / 255.0
    out = upscale_plane(plane, engine)
    return Image.fromarray(np.round(out * 255.0).astype(np.uint8), mode="L")


def upscale_once(image: Image.Image, engine: SuperResEngine) -> Image.Image:
    """One x``engine.scale`` pass."""
    size = (image.width * engine.scale, image.height * engine.scale)
    alpha = image.getchannel("A").resize(size, Image.Resampling.BICUBIC) if image.mode in ("LA", "RGBA") else None
    if image.mode in ("L", "LA"):
        out = upscale_luma(image.getchannel("L"), engine)
    elif image.mode in ("RGB", "RGBA"):
        y, cb, cr = image.convert("RGB").convert("YCbCr").split()
        chroma = [c.resize(size, Image.Resampling.BICUBIC) for c in (cb, cr)]
        out = Image.merge("YCbCr", (upscale_luma(y, engine), *chroma)).convert("RGB")
    else:
        raise ValueError(f"image mode {image.mode!r} is not one of L, LA, RGB, RGBA; normalize it first")
    if alpha is not None:
        out.putalpha(alpha)
    return out


def upscale(
    image: Image.Image, engine: SuperResEngine, passes: int, on_pass: PassCallback | None = None
) -> Image.Image:
    """``passes`` x``engine.scale`` passes; ``on_pass(done, passes)`` after each."""
    for done in range(1, passes + 1):
        image = upscale_once(image, engine)
        if on_pass:
            on_pass(done, passes)
    return image
