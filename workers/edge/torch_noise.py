"""torch's CPU ``randn`` in numpy, so a seed gives the torch backend's noise without torch.

The torch backend draws its latents and LCM's per-step noise from
``torch.Generator("cpu").manual_seed(seed)``.  That generator is a Mersenne
Twister seeded with ``init_genrand``; ``torch.randn`` turns its 32-bit outputs
into normals with Box-Muller.  Reproducing both here makes a job's image the
same on every backend (within float rounding: torch uses SLEEF's log/sin/cos).
"""

from __future__ import annotations

import math

import numpy as np

_MT_N = 624
_FLOAT_BITS = 24  # float32 mantissa digits: torch keeps this many bits of each 32-bit draw
_DOUBLE_BITS = 53


def _mt19937_state(seed: int) -> np.random.MT19937:
    """An MT19937 in the state ``init_genrand(seed)`` leaves, as torch's manual_seed does."""
    key = [seed & 0xFFFFFFFF]
    for index in range(1, _MT_N):
        previous = key[-1]
        key.append((1812433253 * (previous ^ (previous >> 30)) + index) & 0xFFFFFFFF)
    bit_generator = np.random.MT19937()
    bit_generator.state = {
        "bit_generator": "MT19937",
        "state": {"key": np.asarray(key, dtype=np.uint32), "pos": _MT_N},
    }
    return bit_generator


class TorchGenerator:
    """``torch.Generator("cpu").manual_seed(seed)`` followed by ``torch.randn`` calls, in numpy."""

    def __init__(self, seed: int) -> None:
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed must be between 0 and {2**32 - 1}, got {seed}")
        self._bits = _mt19937_state(seed)
        self._cached_normal: float | None = None

    def randn(self, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 array of standard normals, the values ``torch.randn(shape, generator=g)`` gives."""
        count = math.prod(shape)
        values = self._vectorised(count) if count >= 16 else self._scalar(count)
        return values.reshape(shape)

    def _uniform_floats(self, count: int) -> np.ndarray:
        raw = self._bits.random_raw(count)
        return ((raw & ((1 << _FLOAT_BITS) - 1)).astype(np.float32) * np.float32(2.0**-_FLOAT_BITS)).astype(np.float32)

    def _vectorised(self, count: int) -> np.ndarray:
        """torch's ``normal_fill``: blocks of 16 uniforms, Box-Muller on lanes j and j + 8."""
        values = self._uniform_floats(count)
        whole = count - count % 16
        values[:whole] = _box_muller_16(values[:whole])
        if count % 16:
            # torch redraws the last 16 values when the count is not a multiple of 16.
            values[count - 16 :] = _box_muller_16(self._uniform_floats(16))
        return values

    def _scalar(self, count: int) -> np.ndarray:
        """torch's serial path for fewer than 16 values: double Box-Muller, every second value cached."""
        values = np.empty(count, dtype=np.float32)
        for index in range(count):
            if self._cached_normal is not None:
                values[index], self._cached_normal = self._cached_normal, None
                continue
            u1, u2 = self._uniform_double(), self._uniform_double()
            radius = math.sqrt(-2.0 * math.log1p(-u2))
            theta = 2.0 * math.pi * u1
            self._cached_normal = radius * math.sin(theta)
            values[index] = radius * math.cos(theta)
        return values

    def _uniform_double(self) -> float:
        high, low = (int(v) for v in self._bits.random_raw(2))
        return (((high << 32) | low) & ((1 << _DOUBLE_BITS) - 1)) * 2.0**-_DOUBLE_BITS


def _box_muller_16(uniform: np.ndarray) -> np.ndarray:
    blocks = uniform.reshape(-1, 16)
    u1 = np.float32(1.0) - blocks[:, :8]
    u2 = blocks[:, 8:]
    radius = np.sqrt(np.float32(-2.0) * np.log(u1)).astype(np.float32)
    theta = (2.0 * np.pi * u2.astype(np.float64)).astype(np.float32)
    normals = np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    return normals.astype(np.float32).reshape(-1)
