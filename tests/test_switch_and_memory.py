"""Mode switch jobs, /api/vram from heartbeats, and the capacity check before a load."""

from __future__ import annotations

import requests
import yaml

from api.schemas.responses import Job
from tests.client import poll, submit
from tests.conftest import MODEL_ROOT, modes_data
from tests.processes import wait_for


def worker_status(base: str) -> dict:
    [worker] = requests.get(f"{base}/api/models/status", timeout=60).json()["workers"]
    return worker


def test_switch_is_a_job_that_loads_the_mode(api_stack):
    response = requests.post(f"{api_stack.base}/api/modes/switch", json={"mode": "styled"}, timeout=60)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "switch" and response.headers["Location"] == f"/api/jobs/{job['id']}"
    record = poll(api_stack.base, job["id"])
    assert record["status"] == "succeeded", record
    assert record["result"]["mode"] == "styled" and isinstance(record["result"]["load_seconds"], float)
    Job.model_validate(record)  # the documented record is the one served
    assert "url" not in record["result"]
    wait_for(lambda: worker_status(api_stack.base)["mode"] == "styled", 30, "the heartbeat to show the new mode")

    vram = requests.get(f"{api_stack.base}/api/vram", timeout=60).json()
    [worker] = vram["workers"]
    [model] = worker["memory"]["models"]
    assert model["mode"] == "styled" and model["bytes"] > 1_000_000
    assert {lora["adapter_name"] for lora in model["loras"]} == {"style", "detail_kohya"}
    assert all(lora["bytes"] > 0 for lora in model["loras"])
    assert worker["memory"]["models_bytes"] == model["bytes"] + sum(lora["bytes"] for lora in model["loras"])
    assert vram["fleet"]["devices"] == 1
    assert vram["fleet"]["total_bytes"] >= vram["fleet"]["used_bytes"] > 0

    generated = submit(api_stack.base, mode="demo", prompt="a job naming another mode switches the worker")
    assert poll(api_stack.base, generated["id"])["status"] == "succeeded"
    wait_for(lambda: worker_status(api_stack.base)["mode"] == "demo", 30, "the worker to be back on demo")


def test_switch_request_errors(api_stack):
    for body, status, field in (({}, 400, "mode"), ({"mode": 3}, 400, "mode"), ({"mode": "nope"}, 404, "mode")):
        response = requests.post(f"{api_stack.base}/api/modes/switch", json=body, timeout=60)
        assert response.status_code == status
        assert response.json()["error"]["field"] == field


def test_a_model_that_cannot_fit_fails_the_switch_and_the_old_mode_keeps_serving(make_stack, tmp_path, tiny_model):
    from workers.tiny_models import build_sd15

    build_sd15(MODEL_ROOT / "tiny-sd15-b", size="tiny", seed=99)
    data = modes_data()
    data["modes"]["big"] = {"model": "tiny-sd15-b", "default_size": "64x64", "default_steps": 2, "scheduler": "lcm"}
    modes = tmp_path / "modes.yaml"
    modes.write_text(yaml.safe_dump(data))
    # The tiny model holds about 45 MiB of fp32 weights: one fits in 70 MiB, two do not.
    stack = make_stack(MODES_FILE=str(modes), MEMORY_LIMIT_MB="70")
    stack.start_worker()
    base = stack.start_api()
    assert poll(base, submit(base, mode="demo", prompt="loads demo")["id"])["status"] == "succeeded"

    switch = requests.post(f"{base}/api/modes/switch", json={"mode": "big"}, timeout=60).json()
    record = poll(base, switch["id"])
    assert record["status"] == "failed"
    message = record["error"]["message"]
    assert "mode 'big' needs" in message and "MiB" in message and "mode 'demo' keeps serving" in message

    again = poll(base, submit(base, mode="demo", prompt="still served")["id"])
    assert again["status"] == "succeeded"

    def heartbeat_shows_demo() -> dict | None:
        vram = requests.get(f"{base}/api/vram", timeout=60).json()
        return vram if vram["workers"][0]["memory"]["models"] else None

    vram = wait_for(heartbeat_shows_demo, 10, "the heartbeat to report the loaded model")
    [model] = vram["workers"][0]["memory"]["models"]
    assert model["mode"] == "demo" and model["model"].endswith("tiny-sd15")
    assert vram["workers"][0]["memory"]["limit_bytes"] == 70 * 1024 * 1024
