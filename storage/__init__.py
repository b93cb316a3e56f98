"""Object stores for job results, chosen by ``STORE_URL``."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from storage.base import ObjectNotFound, ObjectStore, Presigning, StoreError
from storage.local import LocalStore

if TYPE_CHECKING:
    from config import Settings

__all__ = ["ObjectNotFound", "ObjectStore", "LocalStore", "Presigning", "StoreError", "open_store", "store_from"]


def store_from(settings: Settings) -> ObjectStore:
    """The store that STORE_URL, S3_ENDPOINT_URL, S3_REGION and STORE_FSYNC name: the API's and every worker's."""
    return open_store(settings.store_url, settings.s3_endpoint_url, settings.s3_region, settings.store_fsync)


def open_store(
    store_url: str, s3_endpoint_url: str | None = None, s3_region: str | None = None, fsync: bool = False
) -> ObjectStore:
    """A store from ``file:///path``, a plain folder path or ``s3://bucket/prefix``; ``fsync``: a local
    store's writes reach the disk before they return (S3 stores are durable when they answer).

    An S3 store is checked on opening (the bucket exists, the credentials are accepted), so a
    misconfigured process stops at start-up with a message instead of failing its first job.
    """
    parsed = urlparse(store_url)
    if parsed.scheme in ("", "file"):
        return LocalStore(parsed.path if parsed.scheme else store_url, fsync)
    if parsed.scheme == "s3":
        try:
            from storage.s3 import S3Store
        except ImportError as exc:
            raise StoreError(
                f"STORE_URL {store_url!r} needs boto3 ({exc}); install the s3 extra: pip install '.[s3]'"
            ) from None
        store = S3Store.from_url(store_url, endpoint_url=s3_endpoint_url, region=s3_region)
        store.check()
        return store
    raise ValueError(
        f"STORE_URL {store_url!r}: unsupported scheme {parsed.scheme!r};"
        " use a folder path, file:///path or s3://bucket/prefix"
    )
