"""Image quality figures for super-resolution: PSNR and SSIM on the Y channel, border cropped."""

from __future__ import annotations

import numpy as np


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    return a[border:-border, border:-border] if border else a


def psnr(reference: np.ndarray, test: np.ndarray, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1]."""
    diff = _crop(reference, border).astype(np.float64) - _crop(np.clip(test, 0, 1), border)
    return float(10 * np.log10(1.0 / max(np.mean(diff**2), 1e-12)))


def ssim(reference: np.ndarray, test: np.ndarray, border: int = 0) -> float:
    """Structural similarity (scikit-image's, Gaussian-weighted as Wang et al.) of two images in [0, 1]."""
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            _crop(reference, border).astype(np.float64),
            _crop(np.clip(test, 0, 1), border).astype(np.float64),
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )
