"""The object-store interface: results are bytes under keys named by job ID."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class ObjectNotFound(KeyError):
    """No object is stored under this key."""


class StoreError(RuntimeError):
    """The store cannot be used as configured (no bucket, refused credentials, unreachable endpoint);
    the message says which setting to fix."""


class ObjectStore(Protocol):
    """Bytes under keys.  No store keeps an empty object: ``put`` refuses one, and one found (a local
    file a power loss emptied, an S3 object another tool wrote) reads as missing, so every store
    answers a job's result alike."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str: ...


@runtime_checkable
class Presigning(Protocol):
    """A store whose objects a client can fetch directly, by a URL that expires."""

    def presigned_url(self, key: str, expires: int) -> str: ...


def refuse_empty(key: str, data: bytes) -> None:
    """``put``'s first check in every store: an empty object would read as missing."""
    if not data:
        raise ValueError(f"object {key!r} is empty: the store keeps no empty objects (they read as missing)")


def nonempty(key: str, data: bytes) -> bytes:
    """``get``'s last step in every store: ``data``, unless it is empty, which reads as missing."""
    if not data:
        raise ObjectNotFound(key)
    return data
