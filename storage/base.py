"""The object-store interface: results are bytes under keys named by job ID."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class ObjectNotFound(KeyError):
    """No object is stored under this key."""


class StoreError(RuntimeError):
    """The store cannot be used as configured (no bucket, refused credentials, unreachable endpoint);
    the message says which setting to fix."""


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str: ...


@runtime_checkable
class Presigning(Protocol):
    """A store whose objects a client can fetch directly, by a URL that expires."""

    def presigned_url(self, key: str, expires: int) -> str: ...
