"""S3Store against a real S3 API (moto's server on loopback)."""

from __future__ import annotations

import pytest
import requests

from storage import ObjectNotFound, Presigning, StoreError, open_store
from storage.s3 import S3Store
from tests.processes import free_port, start_moto


def test_put_get_exists_delete_url(s3_bucket, moto_server):
    store = open_store(f"s3://{s3_bucket}", moto_server.url)
    store.put("jobs/a.png", b"\x89PNG data", "image/png")
    assert store.exists("jobs/a.png")
    assert store.get("jobs/a.png") == b"\x89PNG data"
    assert store.url("jobs/a.png") == f"s3://{s3_bucket}/jobs/a.png"
    head = moto_server.client().head_object(Bucket=s3_bucket, Key="jobs/a.png")
    assert head["ContentType"] == "image/png"
    store.put("jobs/a.png", b"again", "image/png")
    assert store.get("jobs/a.png") == b"again"
    store.delete("jobs/a.png")
    assert not store.exists("jobs/a.png")
    with pytest.raises(ObjectNotFound):
        store.get("jobs/a.png")
    store.delete("jobs/a.png")  # deleting twice is fine


def test_prefix_keeps_objects_under_it(s3_bucket, moto_server):
    store = open_store(f"s3://{s3_bucket}/dreamlab/results/", moto_server.url)
    store.put("jobs/b.png", b"bytes", "image/png")
    listed = moto_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["dreamlab/results/jobs/b.png"]
    assert store.get("jobs/b.png") == b"bytes"
    assert not open_store(f"s3://{s3_bucket}", moto_server.url).exists("jobs/b.png")


def test_presigned_url_fetches_without_credentials(s3_bucket, moto_server):
    store = open_store(f"s3://{s3_bucket}/p", moto_server.url)
    store.put("jobs/c.png", b"presigned", "image/png")
    assert isinstance(store, Presigning)
    url = store.presigned_url("jobs/c.png", 60)
    assert url.startswith(f"{moto_server.url}/{s3_bucket}/p/jobs/c.png?")  # path style, on the endpoint
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert response.content == b"presigned"
    assert response.headers["Content-Type"] == "image/png"


def test_missing_bucket_says_what_to_fix(s3_bucket, moto_server):
    with pytest.raises(StoreError, match=r"'no-such-bucket' .* does not exist: create it.*STORE_URL"):
        open_store("s3://no-such-bucket/x", moto_server.url)


def test_refused_credentials_say_what_to_check(s3_bucket, tmp_path):
    # With INITIAL_NO_AUTH_ACTION_COUNT=0 moto checks every request's key against its IAM users: none exist.
    strict = start_moto(tmp_path / "strict", {"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        with pytest.raises(
            StoreError, match="refused the credentials .* check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
        ):
            open_store(f"s3://{s3_bucket}", strict.url)
    finally:
        strict.stop()


def test_missing_credentials_say_what_to_set(moto_server, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StoreError, match="no credentials .* set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        open_store("s3://any-bucket", moto_server.url, "us-east-1")


def test_unreachable_endpoint_names_the_setting(s3_bucket, moto_server):
    with pytest.raises(StoreError, match="cannot reach .* check S3_ENDPOINT_URL"):
        open_store(f"s3://{s3_bucket}", f"http://127.0.0.1:{free_port()}")


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix"])
def test_store_url_without_bucket_is_refused(url):
    with pytest.raises(ValueError, match="names no bucket"):
        S3Store.from_url(url)


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "", "."])
def test_keys_stay_under_the_prefix(s3_bucket, moto_server, key):
    with pytest.raises(ValueError):
        open_store(f"s3://{s3_bucket}/p", moto_server.url).put(key, b"x", "text/plain")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("STORE_SERVE", "bounce", "one of proxy, redirect"), ("S3_PRESIGN_SECONDS", "0", "between 1 and 604800")],
)
def test_serving_settings_are_checked(monkeypatch, name, value, message):
    from config import Settings

    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=message):
        Settings.from_env()


def test_no_empty_objects(s3_bucket, moto_server):
    """As in the local store: an empty write is refused, and an empty object another tool wrote reads as missing."""
    store = open_store(f"s3://{s3_bucket}", moto_server.url)
    with pytest.raises(ValueError, match="empty"):
        store.put("jobs/e.png", b"", "image/png")
    moto_server.client().put_object(Bucket=s3_bucket, Key="jobs/e.png", Body=b"")
    assert not store.exists("jobs/e.png")
    with pytest.raises(ObjectNotFound):
        store.get("jobs/e.png")
