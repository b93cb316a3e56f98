"""End to end through real processes: API (gunicorn) -> Redis -> Celery worker -> diffusers -> store."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis
import requests
from PIL import Image

from api.schemas.responses import Job, ModelsStatus, ModesListing
from tests.client import poll, result_bytes, submit
from tests.conftest import MODEL_ROOT, TEST_MODES, TINY


def test_submit_poll_and_fetch_png_of_requested_size(api_stack):
    job = submit(api_stack.base, prompt="a lighthouse", size="64x128", seed=7)
    assert job["status"] == "queued"
    assert job["params"]["width"] == 64 and job["params"]["height"] == 128

    record = poll(api_stack.base, job["id"])
    assert record["status"] == "succeeded", record
    Job.model_validate(record)  # the documented record is the one served
    assert record["result"] == {
        **record["result"],
        "seed": 7,
        "mode": "demo",
        "width": 64,
        "height": 128,
        "url": f"/api/jobs/{job['id']}/result",
    }
    image = Image.open(io.BytesIO(result_bytes(api_stack.base, job["id"])))
    assert image.format == "PNG" and image.size == (64, 128)
    weights = MODEL_ROOT / TINY / "unet" / "diffusion_pytorch_model.safetensors"
    short_hash = hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    assert image.text["parameters"] == (
        f"a lighthouse\nSteps: 4, Sampler: LCM, CFG scale: 1.0, Seed: 7, Size: 64x128, Model hash: {short_hash}, "
        "Model: demo"
    )


def test_omitted_fields_take_the_mode_defaults(api_stack):
    job = submit(api_stack.base, mode="slow", prompt="defaults", num_inference_steps=2)
    assert job["params"]["width"] == 256 and job["params"]["height"] == 256
    assert job["params"]["guidance"] == 7.5
    assert job["params"]["negative_prompt"] == "blurry"
    assert 0 <= job["params"]["seed"] < 2**32
    assert poll(api_stack.base, job["id"])["status"] == "succeeded"


def test_progress_is_reported_while_running(api_stack):
    seen = []
    job = submit(api_stack.base, mode="slow", prompt="progress", num_inference_steps=40, seed=1)
    record = poll(api_stack.base, job["id"], on_update=seen.append)
    assert record["status"] == "succeeded"
    running = [r["progress"] for r in seen if r["status"] == "running" and r.get("progress")]
    assert running, "never saw progress while the job ran"
    assert all(0 < p["step"] <= p["total"] for p in running)
    assert any(p["step"] < p["total"] for p in running)
    assert [p["step"] for p in running] == sorted(p["step"] for p in running)


def test_same_seed_same_pixels_other_seed_other_pixels(api_stack):
    jobs = [submit(api_stack.base, prompt="a fox", seed=seed) for seed in (123, 123, 124)]
    images = []
    for job in jobs:
        assert poll(api_stack.base, job["id"])["status"] == "succeeded"
        images.append(np.asarray(Image.open(io.BytesIO(result_bytes(api_stack.base, job["id"])))))
    assert np.array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])


def test_generate_is_synchronous_with_seed_headers(api_stack):
    response = requests.post(
        f"{api_stack.base}/generate", json={"prompt": "sync", "seed": 99, "size": "96x64"}, timeout=120
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Mode"] == "demo"
    assert response.headers["X-Seed"] == "99"
    assert response.headers["X-SuperRes"] == "0"
    assert Image.open(io.BytesIO(response.content)).size == (96, 64)
    # The same job path: the record exists and serves the same bytes.
    job_id = response.headers["X-Job-Id"]
    assert result_bytes(api_stack.base, job_id) == response.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "size": "512"}, "size"),
        ({"prompt": "x", "size": "abcxdef"}, "size"),
        ({"prompt": "x", "size": "100x100"}, "size"),
        ({"prompt": "x", "size": "1024x1024"}, "size"),
        ({"prompt": "x", "num_inference_steps": 0}, "num_inference_steps"),
        ({"prompt": "x", "mode": "slow", "num_inference_steps": 151}, "num_inference_steps"),
        ({"prompt": "x", "num_inference_steps": "4"}, "num_inference_steps"),
        ({"prompt": "x", "guidance_scale": -0.5}, "guidance_scale"),
        ({"prompt": "x", "guidance_scale": 30.5}, "guidance_scale"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "seed": 2**32}, "seed"),
        ({"prompt": "x", "seed": 1.5}, "seed"),
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x", "colour": "blue"}, "colour"),
    ],
)
@pytest.mark.parametrize("path", ["/api/jobs", "/generate"])
def test_bad_fields_are_400_naming_the_field_and_enqueue_nothing(api_stack, path, body, field):
    before = requests.get(f"{api_stack.base}/api/models/status", timeout=10).json()["waiting_total"]
    response = requests.post(f"{api_stack.base}{path}", json=body, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["message"]
    assert requests.get(f"{api_stack.base}/api/models/status", timeout=10).json()["waiting_total"] == before


@pytest.mark.parametrize("path", ["/api/jobs", "/generate"])
def test_non_json_body_is_400(api_stack, path):
    response = requests.post(f"{api_stack.base}{path}", data="prompt=x", timeout=10)
    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]["message"]
    response = requests.post(f"{api_stack.base}{path}", json=["prompt"], timeout=10)
    assert response.status_code == 400


def test_unknown_mode_is_404_listing_valid_modes(api_stack):
    response = requests.post(f"{api_stack.base}/api/jobs", json={"prompt": "x", "mode": "nope"}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "mode"
    assert ", ".join(sorted(TEST_MODES["modes"])) in response.json()["error"]["message"]


def test_unknown_job_and_route_are_404_json(api_stack):
    for path in (f"/api/jobs/{uuid.uuid4()}", f"/api/jobs/{uuid.uuid4()}/result", "/api/jobs/not-a-uuid", "/nope"):
        response = requests.get(f"{api_stack.base}{path}", timeout=10)
        assert response.status_code == 404, path
        assert response.json()["error"]["message"]


def test_result_of_unfinished_job_is_409(api_stack):
    job = submit(api_stack.base, mode="npu", prompt="waits forever: no rknn worker here")
    response = requests.get(f"{api_stack.base}/api/jobs/{job['id']}/result", timeout=10)
    assert response.status_code == 409
    assert "queued" in response.json()["error"]["message"]
    redis.Redis.from_url(api_stack.env["REDIS_URL"]).delete("gen.rknn.npu", "dl:waiting:rknn:npu")


def test_a_result_emptied_by_a_power_loss_is_410(api_stack):
    """Without STORE_FSYNC a power loss can leave an unflushed image empty while its succeeded record survives."""
    job = submit(api_stack.base, prompt="flushed too late", seed=3)
    assert poll(api_stack.base, job["id"])["status"] == "succeeded"
    (Path(api_stack.env["STORE_URL"]) / "jobs" / f"{job['id']}.png").write_bytes(b"")
    response = requests.get(f"{api_stack.base}/api/jobs/{job['id']}/result", timeout=10)
    assert response.status_code == 410
    assert "no longer in the object store" in response.json()["error"]["message"]


def test_status_modes_and_health(api_stack):
    status = requests.get(f"{api_stack.base}/api/models/status", timeout=10).json()
    assert set(status["queues"]) == set(TEST_MODES["modes"])
    assert status["queues"]["demo"]["queue"] == "gen.torch.demo"
    [worker] = status["workers"]
    assert worker["backend"] == "torch" and worker["state"] in ("idle", "busy")
    torch_modes = set(TEST_MODES["modes"]) - {"npu"}
    assert worker["serving"] in torch_modes
    assert worker["queues"] == [f"gen.torch.{worker['serving']}", "custom"]
    ModelsStatus.model_validate(status)
    modes = requests.get(f"{api_stack.base}/api/modes", timeout=10).json()
    ModesListing.model_validate(modes)
    assert modes["default_mode"] == "demo"
    assert {m["name"] for m in modes["modes"]} == set(TEST_MODES["modes"])
    assert requests.get(f"{api_stack.base}/healthz", timeout=10).json() == {"status": "ok"}
    assert "openapi" in requests.get(f"{api_stack.base}/api/openapi.yaml", timeout=10).text
