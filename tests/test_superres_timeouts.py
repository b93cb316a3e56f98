"""SR_REQUEST_TIMEOUT: the synchronous endpoints answer 504 with the job to poll when the SR stage does not
end in time, and the job is not lost: it waits on the superres queue and completes once an SR worker runs.

No SR worker runs while the requests wait, so the SR stage cannot end within the timeout on any machine;
the tests assert what the API answers and what became of the job, never how long anything took.
"""

from __future__ import annotations

import io

import redis
import requests
from PIL import Image

from jobs.keys import generation_queue, job_key
from jobs.superres import SUPERRES_QUEUE, generated_key, upload_key
from tests.client import poll
from tests.processes import wait_for
from tests.sr_helpers import encoded, picture, start_superres_worker


def assert_504_with_the_job_to_poll(response: requests.Response, setting: str) -> str:
    assert response.status_code == 504, response.text
    job_id = response.headers["X-Job-Id"]
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    message = response.json()["error"]["message"]
    assert f"did not finish within {setting}" in message and f"poll /api/jobs/{job_id}" in message, message
    return job_id


def test_superres_past_sr_request_timeout_is_504_and_the_job_completes_later(make_stack, tmp_path):
    stack = make_stack(SR_REQUEST_TIMEOUT="1")
    base = stack.start_api()  # no SR worker yet: the job cannot finish while the request waits
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    response = requests.post(
        f"{base}/superres", files={"file": ("in.png", encoded(picture(30, 20)))}, data={"magnitude": "1"}, timeout=60
    )
    job_id = assert_504_with_the_job_to_poll(response, "SR_REQUEST_TIMEOUT=1s")

    record = requests.get(f"{base}{response.headers['Location']}", timeout=10).json()
    assert record["kind"] == "superres" and record["status"] == "queued", record
    assert client.llen(SUPERRES_QUEUE) == 1, "the job is still on its queue"
    assert (tmp_path / "store" / upload_key(job_id)).is_file(), "and its upload is still in the store"

    start_superres_worker(stack)
    record = poll(base, job_id)
    assert record["status"] == "succeeded", record
    assert (record["result"]["width"], record["result"]["height"]) == (90, 60)
    fetched = requests.get(f"{base}/api/jobs/{job_id}/result", timeout=10)
    assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).size == (90, 60)


def test_generate_with_superres_waits_default_timeout_plus_sr_request_timeout(make_stack):
    stack = make_stack(DEFAULT_TIMEOUT="1", SR_REQUEST_TIMEOUT="2")
    base = stack.start_api()  # no worker serves the rknn mode: its jobs stay queued
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    body = {"mode": "npu", "prompt": "late"}
    with_sr = requests.post(f"{base}/generate", json={**body, "superres": True}, timeout=60)
    job_id = assert_504_with_the_job_to_poll(with_sr, "DEFAULT_TIMEOUT + SR_REQUEST_TIMEOUT=3s")
    record = requests.get(f"{base}/api/jobs/{job_id}", timeout=10).json()
    assert record["status"] == "queued" and record["params"]["superres"]["magnitude"] == 1, record

    # The control on the same stack: without superres the wait is DEFAULT_TIMEOUT alone.
    without = requests.post(f"{base}/generate", json=body, timeout=60)
    assert_504_with_the_job_to_poll(without, "DEFAULT_TIMEOUT=1s")
    assert client.llen(generation_queue("rknn", "npu")) == 2


def test_generate_504_during_the_sr_stage_keeps_the_job_for_an_sr_worker(make_stack, tmp_path):
    """The generation worker runs, no SR worker does: the job is handed to the superres queue and waits there."""
    stack = make_stack(DEFAULT_TIMEOUT="1", SR_REQUEST_TIMEOUT="4")
    stack.start_worker()
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    body = {"prompt": "a lighthouse", "size": "64x64", "seed": 5, "superres": True}
    response = requests.post(f"{base}/generate", json=body, timeout=60)
    job_id = assert_504_with_the_job_to_poll(response, "DEFAULT_TIMEOUT + SR_REQUEST_TIMEOUT=5s")

    # Wherever the job was when the request gave up, it reaches the SR stage and waits on its queue.
    wait_for(lambda: client.hget(job_key(job_id), "stage") == b"superres", 120, "the hand-off to the SR stage")
    wait_for(lambda: client.llen(SUPERRES_QUEUE) == 1, 30, "the SR stage on the superres queue")
    record = requests.get(f"{base}/api/jobs/{job_id}", timeout=10).json()
    assert record["status"] == "running", record  # the record stays running between the stages
    assert (tmp_path / "store" / generated_key(job_id)).is_file(), "the generated image waits in the store"

    start_superres_worker(stack)
    record = poll(base, job_id)
    assert record["status"] == "succeeded", record
    assert record["result"]["width"] == 192 and record["result"]["seed"] == 5
    assert record["attempts"] == 2, "one claim by the generation worker, one by the SR worker"
