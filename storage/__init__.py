"""Object stores for job results, chosen by ``STORE_URL``."""

from __future__ import annotations

from urllib.parse import urlparse

from storage.base import ObjectNotFound, ObjectStore
from storage.local import LocalStore

__all__ = ["ObjectNotFound", "ObjectStore", "LocalStore", "open_store"]


def open_store(store_url: str) -> ObjectStore:
    """A store from ``file:///path`` or a plain folder path."""
    parsed = urlparse(store_url)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme else store_url)
    raise ValueError(
        f"STORE_URL {store_url!r}: unsupported scheme {parsed.scheme!r}; use a folder path or file:///path"
    )
