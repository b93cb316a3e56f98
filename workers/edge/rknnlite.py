"""``RKNNLite``: the real one where rknn-toolkit-lite2 imports (aarch64 boards), else the x86 stand-in."""

from __future__ import annotations

try:
    from rknnlite.api import RKNNLite

    STANDIN = False
except ImportError:
    from workers.edge.rknnlite_standin import RKNNLite

    STANDIN = True

__all__ = ["STANDIN", "RKNNLite"]
