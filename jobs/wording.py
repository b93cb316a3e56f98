"""How error messages name values, so no message shows a Python object's repr.

A message names a list of choices as plain words (``demo, sdxl``; a caller whose names hold
spaces quotes each, ``'Euler a', 'DDIM'``), and a value a client sent as the JSON it sent
(``{"a": 1}``, not ``{'a': 1}``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def choices(names: Iterable[Any]) -> str:
    """``a, b, c`` in the order given; ``(none)`` for an empty list."""
    words = [str(name) for name in names]
    return ", ".join(words) if words else "(none)"


def sent(value: Any) -> str:
    """A client's value as JSON text; anything JSON cannot show is named by its type."""
    try:
        return json.dumps(value, ensure_ascii=True, default=lambda other: f"<{type(other).__name__}>")
    except ValueError:
        return f"<{type(value).__name__}>"
