"""The object-store interface: results are bytes under keys named by job ID."""

from __future__ import annotations

from typing import Protocol


class ObjectNotFound(KeyError):
    """No object is stored under this key."""


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str: ...
