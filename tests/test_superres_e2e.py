"""Super-resolution end to end through real processes: the API (gunicorn) -> Redis -> the superres
Celery worker (prefork, its own queue) -> the shipped ONNX model -> the object store."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import redis
import requests
from celery import Celery
from PIL import Image

from jobs.infotext import read_parameters
from jobs.records import JobRecords
from jobs.superres import SUPERRES_QUEUE, SUPERRES_TASK, SuperResJob, SuperResOptions, upload_key
from tests.client import poll, submit
from tests.processes import Stack, stack_env, start_redis, wait_for
from tests.sr_helpers import encoded, picture, png_claiming, start_superres_worker, superres_heartbeats

MAX_UPLOAD = 300_000


@pytest.fixture(scope="module")
def sr_stack(tmp_path_factory, modes_file):
    """A generation worker, a superres worker and the API on their own Redis."""
    tmp = tmp_path_factory.mktemp("sr-stack")
    server = start_redis(tmp / "redis")
    (tmp / "logs").mkdir()
    stack = Stack(stack_env(server.url, modes_file, tmp / "store", SR_MAX_UPLOAD_BYTES=str(MAX_UPLOAD)), tmp / "logs")
    stack.store = tmp / "store"
    try:
        stack.start_worker()
        stack.sr_worker = start_superres_worker(stack)
        stack.base = stack.start_api()
        yield stack
    finally:
        stack.stop()
        server.stop()


def post_superres(base: str, data: bytes, path: str = "/superres", **fields) -> requests.Response:
    return requests.post(f"{base}{path}", files={"file": ("in.png", data)}, data=fields, timeout=120)


def image_of(response: requests.Response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def client_of(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["REDIS_URL"])


def test_superres_returns_the_upscaled_png_with_seed_headers(sr_stack):
    response = post_superres(sr_stack.base, encoded(picture(40, 30)))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-SuperRes"] == "1" and response.headers["X-SR-Passes"] == "1"
    out = image_of(response)
    assert out.size == (120, 90) and out.mode == "RGB"
    job_id = response.headers["X-Job-Id"]
    record = requests.get(f"{sr_stack.base}/api/jobs/{job_id}", timeout=10).json()
    assert record["kind"] == "superres" and record["status"] == "succeeded"
    assert record["params"]["input_width"] == 40 and record["result"]["engine"] == "onnx"
    # The worker records the result first and removes the upload right after (a crash in between
    # leaves a file behind, never a job without its input).
    upload = sr_stack.store / upload_key(job_id)
    wait_for(lambda: not upload.exists(), 30, "the upload to be removed once the job ended")


def test_jpeg_two_passes_and_quality(sr_stack):
    data = encoded(picture(24, 20))
    small = post_superres(sr_stack.base, data, magnitude="2", out_format="jpeg", quality="20")
    large = post_superres(sr_stack.base, data, magnitude="2", out_format="jpeg", quality="95")
    for response in (small, large):
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "image/jpeg" and response.headers["X-SR-Passes"] == "2"
        assert image_of(response).format == "JPEG" and image_of(response).size == (216, 180)
    assert len(small.content) < len(large.content)


def test_alpha_survives_a_round_trip(sr_stack):
    response = post_superres(sr_stack.base, encoded(picture(30, 20, "RGBA")))
    assert response.status_code == 200, response.text
    out = image_of(response)
    assert out.mode == "RGBA" and out.size == (90, 60)
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[:, :40].max() == 0 and alpha[:, 50:].min() == 255


def test_async_superres_is_a_job_like_generation(sr_stack):
    response = post_superres(sr_stack.base, encoded(picture(50, 40), "JPEG"), "/api/superres", out_format="jpeg")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["kind"] == "superres" and job["status"] == "queued"
    record = poll(sr_stack.base, job["id"])
    assert record["status"] == "succeeded", record
    assert record["result"] == {
        **record["result"],
        "width": 150,
        "height": 120,
        "content_type": "image/jpeg",
        "passes": 1,
        "url": f"/api/jobs/{job['id']}/result",
    }
    fetched = requests.get(f"{sr_stack.base}/api/jobs/{job['id']}/result", timeout=10)
    assert fetched.headers["Content-Type"] == "image/jpeg"
    assert image_of(fetched).size == (150, 120)
    assert read_parameters(image_of(fetched)) == "Postprocess upscale by: 3, Postprocess upscaler: Sub-Pixel CNN"


def test_generate_with_superres_upscales_on_the_sr_worker(sr_stack):
    body = {"prompt": "a lighthouse", "size": "64x64", "seed": 11, "superres": True}
    response = requests.post(f"{sr_stack.base}/generate", json=body, timeout=180)
    assert response.status_code == 200, response.text
    assert response.headers["X-SuperRes"] == "1" and response.headers["X-SR-Passes"] == "1"
    assert response.headers["X-Seed"] == "11" and response.headers["X-Mode"] == "demo"
    out = image_of(response)
    assert out.size == (192, 192) and out.format == "PNG"
    assert "Seed: 11" in out.text["parameters"], "the A1111 parameters survive the upscale"
    assert out.text["parameters"].endswith(", Postprocess upscale by: 3, Postprocess upscaler: Sub-Pixel CNN")
    record = requests.get(f"{sr_stack.base}/api/jobs/{response.headers['X-Job-Id']}", timeout=10).json()
    assert record["kind"] == "generate" and record["params"]["superres"]["magnitude"] == 1
    assert record["result"]["superres"]["input_width"] == 64 and record["result"]["sampler"] == "LCM"
    assert record["attempts"] == 2, "one claim by the generation worker, one by the SR worker"


def test_jobs_api_with_superres_jpeg(sr_stack):
    job = submit(
        sr_stack.base, prompt="a fox", size="64x64", superres=True, superres_format="jpeg", superres_quality=70
    )
    assert job["params"]["superres"] == {"magnitude": 1, "out_format": "jpeg", "quality": 70}
    record = poll(sr_stack.base, job["id"], timeout=180)
    assert record["status"] == "succeeded", record
    assert record["result"]["content_type"] == "image/jpeg" and record["result"]["width"] == 192
    fetched = requests.get(f"{sr_stack.base}/api/jobs/{job['id']}/result", timeout=10)
    assert fetched.headers["Content-Type"] == "image/jpeg"


def test_generate_without_superres_says_so(sr_stack):
    response = requests.post(f"{sr_stack.base}/generate", json={"prompt": "plain", "superres": False}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["X-SuperRes"] == "0" and response.headers["X-SR-Passes"] == "0"


BAD_UPLOADS = {
    "empty": (b"", {}, 400, "empty"),
    "text": (b"just some text, no pixels at all" * 20, {}, 400, "not an image"),
    "truncated-png": (encoded(picture(80, 80))[:2000], {}, 400, "truncated"),
    "truncated-jpeg": (encoded(picture(80, 80), "JPEG")[:900], {}, 400, "truncated"),
    "bomb": (png_claiming(5_000, 5_000), {}, 400, "15000x15000 .* SR_MAX_PIXELS=16777216"),
    "huge-bomb": (png_claiming(30_000, 30_000), {}, 400, "decompression bomb"),
    "zero-size": (png_claiming(0, 50), {}, 400, "zero size|not an image"),
    "aspect": (encoded(picture(660, 10)), {}, 400, "aspect ratio"),
    "too-many-pixels": (encoded(picture(200, 200)), {"magnitude": "3"}, 400, "5400x5400"),
    "too-many-bytes": (b"\x89PNG" + bytes(MAX_UPLOAD + 10), {}, 413, f"SR_MAX_UPLOAD_BYTES={MAX_UPLOAD}"),
    "far-too-many-bytes": (bytes(3 * MAX_UPLOAD), {}, 413, f"SR_MAX_UPLOAD_BYTES={MAX_UPLOAD}"),
    "magnitude-0": (encoded(picture(8, 8)), {"magnitude": "0"}, 400, "magnitude"),
    "magnitude-word": (encoded(picture(8, 8)), {"magnitude": "two"}, 400, "magnitude"),
    "format": (encoded(picture(8, 8)), {"out_format": "gif"}, 400, "out_format"),
    "quality": (encoded(picture(8, 8)), {"quality": "101"}, 400, "quality"),
    "unknown-field": (encoded(picture(8, 8)), {"scale": "4"}, 400, "unknown field 'scale'"),
}


@pytest.mark.parametrize("path", ["/superres", "/api/superres"])
@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_uploads_are_4xx_and_enqueue_nothing(sr_stack, path, case):
    data, fields, status, message = BAD_UPLOADS[case]
    client = client_of(sr_stack)
    jobs_before = len(list(client.scan_iter("dl:job:*")))
    stored_before = set(sr_stack.store.rglob("*"))
    response = post_superres(sr_stack.base, data, path, **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error.get("field")
    assert re.search(message, error["message"]), error
    assert client.llen(SUPERRES_QUEUE) == 0
    assert len(list(client.scan_iter("dl:job:*"))) == jobs_before
    assert set(sr_stack.store.rglob("*")) == stored_before, "a refused upload is not stored"


def test_requests_that_are_not_uploads_are_400(sr_stack):
    response = requests.post(f"{sr_stack.base}/superres", json={"file": "x"}, timeout=10)
    assert response.status_code == 400 and "multipart/form-data" in response.json()["error"]["message"]
    response = requests.post(f"{sr_stack.base}/superres", files={"image": ("a.png", b"x")}, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["field"] == "image"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"superres": "yes"}, "superres"),
        ({"superres": True, "superres_magnitude": 4}, "superres_magnitude"),
        ({"superres": True, "superres_format": "tiff"}, "superres_format"),
        ({"superres": True, "superres_quality": 0}, "superres_quality"),
        ({"superres": True, "size": "512x512", "superres_magnitude": 2}, "superres_magnitude"),
    ],
)
@pytest.mark.parametrize("path", ["/api/jobs", "/generate"])
def test_bad_post_generation_fields_are_400(sr_stack, path, body, field):
    client = client_of(sr_stack)
    response = requests.post(f"{sr_stack.base}{path}", json={"prompt": "x", **body}, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert client.llen("gen.torch.demo") == 0


def test_limit_message_names_the_size_it_would_have_made(sr_stack):
    response = requests.post(
        f"{sr_stack.base}/api/jobs",
        json={"prompt": "x", "size": "512x512", "superres": True, "superres_magnitude": 2},
        timeout=10,
    )
    message = response.json()["error"]["message"]
    assert "4608x4608" in message and "SR_MAX_PIXELS=16777216" in message


def test_a_bad_file_that_reaches_the_worker_fails_its_job_and_nothing_else(sr_stack):
    """Bypass the API's checks: the worker checks again, fails the job with a reason and carries on."""
    client = client_of(sr_stack)
    pids = {b["pid"] for b in superres_heartbeats(client)}
    truncated = encoded(picture(120, 120))[:3000]
    bad_id = "00000000-0000-4000-8000-000000000001"
    JobRecords(client, 3600).create(bad_id, "superres", "superres", {}, [SUPERRES_QUEUE], 100)
    (sr_stack.store / "uploads").mkdir(exist_ok=True)
    (sr_stack.store / upload_key(bad_id)).write_bytes(truncated)
    job = SuperResJob(bad_id, upload_key(bad_id), SuperResOptions(1, "png", 95))
    Celery(broker=sr_stack.env["REDIS_URL"]).send_task(SUPERRES_TASK, args=[job.to_dict()], queue=SUPERRES_QUEUE)
    record = poll(sr_stack.base, bad_id)
    assert record["status"] == "failed"
    assert "truncated or corrupt" in record["error"]["message"]
    assert sr_stack.sr_worker.poll() is None
    assert {b["pid"] for b in superres_heartbeats(client)} == pids, "no pool process died"
    assert post_superres(sr_stack.base, encoded(picture(30, 30))).status_code == 200


def test_duplicate_delivery_of_an_sr_job_completes_once(sr_stack):
    response = post_superres(sr_stack.base, encoded(picture(160, 160)), "/api/superres", magnitude="2")
    job_id = response.json()["id"]
    job = SuperResJob(job_id, upload_key(job_id), SuperResOptions(2, "png", 95))
    Celery(broker=sr_stack.env["REDIS_URL"]).send_task(SUPERRES_TASK, args=[job.to_dict()], queue=SUPERRES_QUEUE)
    record = poll(sr_stack.base, job_id)
    assert record["status"] == "succeeded", record
    log = sr_stack.sr_worker.log_path
    dropped = f"job {job_id}: it already ended; dropping this delivery"
    wait_for(lambda: dropped in log.read_text(), 60, "the duplicate to be dropped")
    stored = json.loads(client_of(sr_stack).hget(f"dl:job:{job_id}", "completions"))
    assert stored == 1
    assert log.read_text().count(f"job {job_id}: super-resolution succeeded") == 1
