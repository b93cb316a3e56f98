"""The ``dreamlab`` CLI end to end, as a user runs it, against a running stack (real redis-server, the API
under gunicorn, a torch worker on the tiny model)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import requests
from PIL import Image

from tests.processes import ROOT


def dreamlab(base: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DREAMLAB_URL": base, "COLUMNS": "200"}  # rich wraps tables to the terminal's width
    env.pop("DREAMLAB_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "dreamlab_client", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_generate_writes_the_png_and_exits_0(api_stack, tmp_path):
    out = tmp_path / "out.png"
    done = dreamlab(api_stack.base, "generate", "a lighthouse", "--seed", "1", "--size", "64x96", "-o", str(out))
    assert done.returncode == 0, done.stderr
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (64, 96)
    assert str(out) in done.stdout


def test_a_bad_mode_prints_the_apis_message_and_exits_non_zero(api_stack):
    answer = requests.post(f"{api_stack.base}/api/jobs", json={"prompt": "x", "mode": "nope"}, timeout=30)
    assert answer.status_code == 404
    done = dreamlab(api_stack.base, "generate", "x", "--mode", "nope")
    assert done.returncode == 1
    assert answer.json()["error"]["message"] in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_json_output_parses_on_every_command(api_stack, tmp_path):
    out = tmp_path / "j.png"
    done = dreamlab(api_stack.base, "generate", "json", "--seed", "2", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded" and job["output"] == str(out) and out.stat().st_size > 0

    for args in (["jobs", "show", job["id"]], ["jobs", "wait", job["id"], "-o", str(tmp_path / "again.png")]):
        assert json.loads(dreamlab(api_stack.base, *args, "--json").stdout)["id"] == job["id"]
    listed = json.loads(dreamlab(api_stack.base, "jobs", "list", "--status", "succeeded", "--json").stdout)
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    modes = json.loads(dreamlab(api_stack.base, "modes", "list", "--json").stdout)
    assert "demo" in [m["name"] for m in modes["modes"]]
    fleet = json.loads(dreamlab(api_stack.base, "status", "--json").stdout)
    assert fleet["workers"] and "demo" in fleet["queues"]
    assert (tmp_path / "again.png").read_bytes() == out.read_bytes()


def test_generate_polls_when_the_api_has_no_stream_to_give(api_stack, tmp_path):
    base = api_stack.start_api({"SSE_MAX_STREAMS": "0"})
    out = tmp_path / "polled.png"
    done = dreamlab(base, "generate", "polled", "--seed", "3", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded"
    assert Image.open(io.BytesIO(out.read_bytes())).format == "PNG"
    assert requests.get(f"{base}/api/jobs/{job['id']}/events", timeout=30).status_code == 503  # it had to poll


def test_the_client_imports_neither_torch_nor_the_server():
    code = (
        "import sys, dreamlab_client.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'api', 'jobs', 'tasks', 'workers')); "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_tables_print_for_people(api_stack):
    job = requests.post(f"{api_stack.base}/api/jobs", json={"prompt": "a table row", "mode": "npu"}, timeout=30).json()
    for args, shown in (
        (["jobs", "list"], "a table row"),
        (["jobs", "show", job["id"]], "queued"),
        (["modes", "list"], "demo (default)"),
        (["status"], "workers"),
        (["jobs", "cancel", job["id"]], "canceled"),
    ):
        done = dreamlab(api_stack.base, *args)
        assert done.returncode == 0 and shown in done.stdout, (args, done.stdout, done.stderr)
