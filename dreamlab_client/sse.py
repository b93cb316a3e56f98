"""Server-Sent Events read from lines (``GET /api/jobs/<id>/events``): named events with JSON data, and comments."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """``name`` is the event's name, or "" for a comment (``data`` is then its text)."""

    name: str
    data: Any


def parse(lines: Iterable[str]) -> Iterator[Event]:
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif line.startswith(":"):
            yield Event("", line[1:].strip())
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
