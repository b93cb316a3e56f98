"""Super-resolution jobs have their own queue, workers and backpressure; uploads go through the store."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import redis
import requests
from PIL import Image

from jobs.superres import SUPERRES_QUEUE, upload_key
from tests.client import poll, submit
from tests.processes import wait_for
from tests.sr_helpers import encoded, picture, run_to_exit, start_superres_worker, superres_heartbeats


def post_superres(base: str, data: bytes, path: str = "/api/superres", **fields) -> requests.Response:
    return requests.post(f"{base}{path}", files={"file": ("in.png", data)}, data=fields, timeout=120)


def noise_png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels))


def test_the_upload_reaches_the_worker_through_the_store_not_the_broker(make_stack, tmp_path):
    stack = make_stack()
    base = stack.start_api()  # no SR worker: the job waits in its queue for inspection
    data = noise_png(200, 200)
    assert len(data) > 100_000
    job_id = post_superres(base, data).json()["id"]
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    [message] = client.lrange(SUPERRES_QUEUE, 0, -1)
    assert len(message) < 4096, "the broker carries a key, not the image"
    args, _, _ = json.loads(base64.b64decode(json.loads(message)["body"]))
    assert args[0]["input_key"] == upload_key(job_id)
    assert (tmp_path / "store" / upload_key(job_id)).read_bytes() == data


def test_sr_backpressure_is_separate_from_generation(make_stack):
    stack = make_stack(SR_QUEUE_MAX="2", QUEUE_MAX="1", RETRY_AFTER="7")
    base = stack.start_api()  # no workers: everything waits
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    data = encoded(picture(16, 16))
    assert [post_superres(base, data).status_code for _ in range(2)] == [202, 202]
    for path in ("/api/superres", "/superres"):
        full = post_superres(base, data, path)
        assert full.status_code == 429, full.text
        assert full.headers["Retry-After"] == "7" and "SR_QUEUE_MAX=2" in full.json()["error"]["message"]
    assert client.llen(SUPERRES_QUEUE) == 2
    status = requests.get(f"{base}/api/models/status", timeout=10).json()["superres"]
    assert status == {"enabled": True, "queue": SUPERRES_QUEUE, "waiting": 2, "queue_max": 2}
    assert len(list(client.scan_iter("dl:lease:*"))) == 0
    # Generation has its own limit: SR jobs waiting do not count against QUEUE_MAX, and the reverse.
    assert requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": "p"}, timeout=10).status_code == 202
    full = requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": "q"}, timeout=10)
    assert full.status_code == 429 and "QUEUE_MAX=1" in full.json()["error"]["message"]
    uploads = Path(stack.env["STORE_URL"]) / "uploads"
    assert len(list(uploads.glob("*"))) == 2, "a refused upload leaves nothing in the store"


def test_sr_disabled_answers_503_and_generation_goes_on(make_stack):
    stack = make_stack(SR_ENABLED="0")
    base = stack.start_api()
    for path in ("/superres", "/api/superres"):
        response = post_superres(base, encoded(picture(8, 8)), path)
        assert response.status_code == 503 and "SR_ENABLED=0" in response.json()["error"]["message"]
    response = requests.post(f"{base}/generate", json={"prompt": "x", "superres": True}, timeout=10)
    assert response.status_code == 503 and response.json()["error"]["field"] == "superres"
    assert requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": "p"}, timeout=10).status_code == 202


def test_a_burst_of_sr_does_not_stall_generation_nor_the_reverse(make_stack, tmp_path):
    stack = make_stack(CUSTOM_HANDLER_MODULES="tests.handlers.sample")
    stack.start_worker()
    start_superres_worker(stack, processes=2)
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    beats = superres_heartbeats(client)
    assert len({b["pid"] for b in beats}) == 2 and all(json.loads(b["queues"]) == [SUPERRES_QUEUE] for b in beats)

    burst = [post_superres(base, noise_png(160, 160), magnitude="2").json()["id"] for _ in range(10)]
    generation = submit(base, prompt="not stalled", seed=3)
    assert poll(base, generation["id"])["status"] == "succeeded"
    waiting = [job_id for job_id in burst if client.hget(f"dl:job:{job_id}", "status") == b"queued"]
    assert waiting, "every SR job had ended before the generation job: the burst was too small to show anything"

    # The generation worker is held busy until the test releases it; an SR job completes meanwhile.
    release = tmp_path / "release"
    body = {"handler": "hold", "args": {"until": str(release)}}
    held = requests.post(f"{base}/api/custom", json=body, timeout=30).json()["id"]
    wait_for(lambda: client.hget(f"dl:job:{held}", "status") == b"running", 120, "the generation worker to be held")
    queued = submit(base, prompt="behind the held job", seed=4)
    sr = post_superres(base, encoded(picture(20, 20))).json()["id"]
    assert poll(base, sr, timeout=300)["status"] == "succeeded"
    assert client.hget(f"dl:job:{held}", "status") == b"running"
    assert client.hget(f"dl:job:{queued['id']}", "status") == b"queued"
    release.touch()
    assert poll(base, held)["status"] == "succeeded" and poll(base, queued["id"])["status"] == "succeeded"
    for job_id in burst:
        assert poll(base, job_id, timeout=300)["status"] == "succeeded"


def test_torch_engine_worker_from_safetensors(make_stack):
    stack = make_stack(SR_MODEL_PATH="workers/superres/weights/subpixel-x3.safetensors")
    start_superres_worker(stack)
    base = stack.start_api()
    response = post_superres(base, encoded(picture(30, 20)), "/superres")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (90, 60)
    record = requests.get(f"{base}/api/jobs/{response.headers['X-Job-Id']}", timeout=10).json()
    assert record["result"]["engine"] == "torch"


def test_superres_worker_refuses_a_bad_configuration(make_stack, tmp_path):
    stack = make_stack()
    argv = [sys.executable, "-m", "tasks.superres_worker"]
    cases = [
        ({"SR_MODEL_PATH": str(tmp_path / "missing.onnx")}, "is not a file"),
        ({"SR_INPUT_SIZE": "128", "SR_OUTPUT_SIZE": "384"}, "set SR_INPUT_SIZE=224"),
        ({"SR_ENGINE": "npu"}, "SR_ENGINE='npu'"),
        ({"SR_ENABLED": "0"}, "SR_ENABLED=0"),
    ]
    for env, message in cases:
        code, log = run_to_exit(stack, argv, env)
        assert code != 0 and message in log, log


def test_a_pool_process_killed_mid_job_is_replaced_and_the_job_completes_once(make_stack):
    stack = make_stack(LEASE_TTL="3", VISIBILITY_TIMEOUT="4", SR_MAX_PIXELS=str(60_000_000))
    worker = start_superres_worker(stack)
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    job_id = post_superres(base, noise_png(800, 800), magnitude="2").json()["id"]

    def first_pass_done():
        record = requests.get(f"{base}/api/jobs/{job_id}", timeout=10).json()
        return record if (record.get("progress") or {}).get("step") == 1 else None

    running = wait_for(first_pass_done, 120, "the first of two passes")
    assert running["status"] == "running"
    [beat] = superres_heartbeats(client)
    os.kill(int(beat["pid"]), signal.SIGKILL)

    record = poll(base, job_id, timeout=300)
    assert record["status"] == "succeeded", record
    assert record["attempts"] == 2 and record["result"]["width"] == 7200
    assert int(client.hget(f"dl:job:{job_id}", "completions")) == 1
    assert worker.poll() is None, "the worker replaced its pool process and carries on"
    assert [b["pid"] for b in superres_heartbeats(client)] != [beat["pid"]]
