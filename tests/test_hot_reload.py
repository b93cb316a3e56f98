"""modes.yaml hot reload: file edit, POST /api/modes/reload and SIGHUP, with jobs running."""

from __future__ import annotations

import signal

import requests
import yaml

from tests.client import poll, submit
from tests.conftest import TEST_MODES, modes_data
from tests.processes import wait_for


def write_modes(path, mutate=None) -> None:
    data = modes_data()
    if mutate:
        mutate(data)
    path.write_text(yaml.safe_dump(data))


def versions(base: str, n: int = 12) -> set[int]:
    """The config version as n separate connections see it (gunicorn spreads them over its workers)."""
    return {requests.get(f"{base}/api/modes", timeout=10).json()["config"]["version"] for _ in range(n)}


def add_extra_mode(data) -> None:
    data["modes"]["extra"] = {"model": "tiny-sd15", "default_size": "64x64", "default_steps": 3, "scheduler": "lcm"}
    data["modes"]["demo"]["default_steps"] = 2


def test_file_edit_reloads_every_process_and_no_running_job_fails(make_stack, tmp_path):
    modes = tmp_path / "modes.yaml"
    write_modes(modes)
    stack = make_stack(MODES_FILE=str(modes))
    stack.start_worker()
    base = stack.start_api()
    assert versions(base) == {1}
    jobs = [submit(base, mode="slow", prompt=f"busy {i}", num_inference_steps=25, seed=i) for i in range(4)]

    write_modes(modes, add_extra_mode)
    wait_for(lambda: versions(base, 4) == {2}, 30, "the edit to reach every API process")
    assert versions(base) == {2}

    for job in jobs:
        assert poll(base, job["id"])["status"] == "succeeded"
    fresh = submit(base, prompt="new defaults")
    assert fresh["params"]["steps"] == 2
    extra = submit(base, mode="extra", prompt="a mode added by the edit")
    assert poll(base, extra["id"])["status"] == "succeeded", "the worker did not follow the new mode's queue"
    status = requests.get(f"{base}/api/models/status", timeout=10).json()
    assert status["queues"]["extra"] == {"queue": "gen.torch.extra", "waiting": 0}


def test_broken_edit_keeps_the_last_good_config_and_says_why(make_stack, tmp_path):
    modes = tmp_path / "modes.yaml"
    write_modes(modes)
    stack = make_stack(MODES_FILE=str(modes), MODES_WATCH="0")
    base = stack.start_api()
    modes.write_text("modes:\n  demo: {model: tiny-sd15, default_steps: 0}\n")

    response = requests.post(f"{base}/api/modes/reload", timeout=10)
    assert response.status_code == 422
    body = response.json()
    assert "mode 'demo': 'default_steps' must be between 1 and 150" in body["error"]["message"]
    assert body["config"]["version"] == 1
    listing = requests.get(f"{base}/api/modes", timeout=10).json()
    assert {m["name"] for m in listing["modes"]} == set(TEST_MODES["modes"])
    assert "default_steps" in listing["config"]["error"]["message"]
    assert requests.post(f"{base}/api/jobs", json={"prompt": "still served"}, timeout=10).status_code == 202

    write_modes(modes, add_extra_mode)
    response = requests.post(f"{base}/api/modes/reload", timeout=10)
    assert response.status_code == 200
    assert response.json()["config"] == {**response.json()["config"], "version": 2, "error": None}
    assert versions(base) == {2}


def test_sighup_reloads(make_stack, tmp_path):
    modes = tmp_path / "modes.yaml"
    write_modes(modes)
    stack = make_stack(MODES_FILE=str(modes), MODES_WATCH="0")
    base = stack.start_api()
    write_modes(modes, add_extra_mode)
    api_master = stack.processes[-1]
    api_master.send_signal(signal.SIGHUP)
    wait_for(lambda: versions(base, 4) == {2}, 30, "SIGHUP to reload the modes file")
    assert "extra" in {m["name"] for m in requests.get(f"{base}/api/modes", timeout=10).json()["modes"]}
