"""Canny edges of a control image, in numpy and scipy (no OpenCV), for the ``canny`` preprocessor.

The steps of Canny's detector: grey levels, a Gaussian blur, Sobel gradients, thinning to the
local maxima along the gradient, and hysteresis between two thresholds (100 and 200 on the
Sobel magnitude of 0-255 grey levels, as A1111's ControlNet extension defaults).  The result
is white edges on black, in RGB, as ControlNet canny models were trained on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

LOW, HIGH = 100.0, 200.0


def canny(image: Image.Image, low: float = LOW, high: float = HIGH, sigma: float = 1.0) -> Image.Image:
    grey = ndimage.gaussian_filter(np.asarray(image.convert("L"), dtype=np.float32), sigma)
    gx, gy = ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=0)
    magnitude = np.hypot(gx, gy)
    thin = magnitude * _local_maxima(magnitude, np.arctan2(gy, gx))
    strong, weak = thin >= high, thin >= low
    labels, count = ndimage.label(weak, structure=np.ones((3, 3)))
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    edges = (keep[labels] * 255).astype(np.uint8)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def _local_maxima(magnitude: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Where the magnitude is at least its two neighbours along the gradient (directions in 45 degree steps)."""
    direction = (np.round(angle / (np.pi / 4)) % 4).astype(int)
    padded = np.pad(magnitude, 1)
    h, w = magnitude.shape
    keep = np.zeros_like(magnitude, dtype=bool)
    for index, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = padded[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (direction == index) & (magnitude >= ahead) & (magnitude >= behind)
    return keep
