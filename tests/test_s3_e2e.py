"""The whole stack on the S3 store: API (gunicorn) -> Redis -> Celery worker -> diffusers -> moto's S3 API,
the result served by the API (STORE_SERVE=proxy) or by a redirect to a presigned URL (redirect)."""

from __future__ import annotations

import io

import requests
from PIL import Image

from tests.client import poll, result_bytes, submit
from tests.processes import FAKE_AWS_ENV


def test_generation_on_s3_served_proxied_and_by_redirect(make_stack, moto_server, s3_bucket, tmp_path):
    stack = make_stack(STORE_URL=f"s3://{s3_bucket}/fleet", S3_ENDPOINT_URL=moto_server.url, **FAKE_AWS_ENV)
    stack.start_worker()
    proxied = stack.start_api()
    redirecting = stack.start_api({"STORE_SERVE": "redirect", "S3_PRESIGN_SECONDS": "120"})

    job = submit(proxied, prompt="a bucket of paint", size="64x64", seed=3)
    record = poll(proxied, job["id"])
    assert record["status"] == "succeeded", record
    key = f"fleet/jobs/{job['id']}.png"
    assert moto_server.client().head_object(Bucket=s3_bucket, Key=key)["ContentType"] == "image/png"
    png = result_bytes(proxied, job["id"])
    assert Image.open(io.BytesIO(png)).size == (64, 64)

    url = f"{redirecting}/api/jobs/{job['id']}/result"
    answer = requests.get(url, allow_redirects=False, timeout=60)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(f"{moto_server.url}/{s3_bucket}/{key}?") and "X-Amz-Expires=120" in location
    assert result_bytes(redirecting, job["id"]) == png  # requests follows the redirect to the store

    # The original Dream Lab's synchronous route answers with the bytes whatever STORE_SERVE says.
    sync = requests.post(
        f"{redirecting}/generate", json={"prompt": "a bucket of paint", "seed": 3, "size": "64x64"}, timeout=120
    )
    assert sync.status_code == 200, sync.text
    assert sync.content == png  # the same job again: the same bytes

    # A local store has nothing to presign: it proxies even when asked to redirect.
    local = tmp_path / "local"
    (local / "jobs").mkdir(parents=True)
    (local / "jobs" / f"{job['id']}.png").write_bytes(png)
    local_api = stack.start_api({"STORE_URL": str(local), "STORE_SERVE": "redirect"})
    served = requests.get(f"{local_api}/api/jobs/{job['id']}/result", allow_redirects=False, timeout=60)
    assert served.status_code == 200 and served.content == png

    moto_server.client().delete_object(Bucket=s3_bucket, Key=key)
    for base in (proxied, redirecting):
        gone = requests.get(f"{base}/api/jobs/{job['id']}/result", allow_redirects=False, timeout=60)
        assert gone.status_code == 410, gone.text
