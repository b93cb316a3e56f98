"""Object store on an S3-compatible service (AWS S3, MinIO, ...): ``STORE_URL=s3://bucket/optional/prefix``.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, an instance role); ``S3_ENDPOINT_URL`` names a service other than AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from storage.base import ObjectNotFound, StoreError, nonempty, refuse_empty

MISSING = {"NoSuchKey", "404", "NotFound"}
REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}


class S3Store:
    """Objects under ``prefix/`` in ``bucket``; writes are atomic (S3 replaces an object whole)."""

    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint_url or "AWS S3"
        # MinIO and most other services serve buckets by path, not as DNS names under the endpoint.
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
        )
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
        )

    @classmethod
    def from_url(cls, store_url: str, endpoint_url: str | None = None, region: str | None = None) -> S3Store:
        parsed = urlparse(store_url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"STORE_URL {store_url!r} names no bucket; use s3://bucket or s3://bucket/prefix")
        return cls(parsed.netloc, parsed.path, endpoint_url, region)

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts or "." in parts:
            raise ValueError(f"object key {key!r} must be a relative path without '.' or '..'")
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        """Raise StoreError unless the bucket exists and the credentials are accepted."""
        with self._errors():
            self.client.head_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        refuse_empty(key, data)
        with self._errors():
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        with self._errors(key):
            data = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        return nonempty(key, data)

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFound:
            return False
        return head["ContentLength"] > 0

    def delete(self, key: str) -> None:
        with self._errors():
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def presigned_url(self, key: str, expires: int) -> str:
        """A URL that fetches the object without credentials for ``expires`` seconds."""
        with self._errors():
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires
            )

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """botocore's exceptions as ObjectNotFound (for ``key``) or a StoreError that says what to fix."""
        where = f"bucket {self.bucket!r} at {self.endpoint}"
        try:
            yield
        except NoCredentialsError:
            raise StoreError(
                f"no credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ) from None
        except EndpointConnectionError as exc:
            raise StoreError(f"cannot reach {self.endpoint} ({exc}); check S3_ENDPOINT_URL") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket" or (key is None and code in MISSING):
                raise StoreError(
                    f"{where} does not exist: create it, or fix the bucket in STORE_URL (and S3_ENDPOINT_URL)"
                ) from None
            if key is not None and code in MISSING:
                raise ObjectNotFound(key) from None
            if code in REFUSED:
                raise StoreError(
                    f"{where} refused the credentials ({code}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
                    " and the bucket's policy"
                ) from None
            raise StoreError(f"{where}: {exc}") from None
        except BotoCoreError as exc:
            raise StoreError(f"{where}: {exc}; check STORE_URL, S3_ENDPOINT_URL and S3_REGION") from None
