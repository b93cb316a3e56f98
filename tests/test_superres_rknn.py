"""The RKNN super-resolution engine on the RKNNLite stand-in: the shipped weights converted with
``python -m workers.superres.convert_rknn --standin``, in-process and through a real SR worker."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import redis
import requests
from PIL import Image

from config import DEFAULT_SR_MODEL
from tests.client import poll
from tests.sr_helpers import encoded, picture, run_to_exit, start_superres_worker, superres_heartbeats
from workers.edge.rknn_graph import RknnError
from workers.superres.convert_rknn import convert
from workers.superres.engine import EngineConfig, EngineError, load_engine
from workers.superres.pipeline import upscale


@pytest.fixture(scope="module")
def rknn_model(tmp_path_factory) -> Path:
    """The shipped ONNX model converted for the stand-in at its 224 px tiles."""
    return convert(DEFAULT_SR_MODEL, tmp_path_factory.mktemp("sr-rknn") / "x3.rknn", 224, "rk3588", standin=True)


def engine(path: Path, name: str = "auto", tile: int = 224):
    return load_engine(EngineConfig(name, path, tile, tile * 3, threads=1))


def post_superres(base: str, data: bytes, path: str = "/superres") -> requests.Response:
    return requests.post(f"{base}{path}", files={"file": ("in.png", data)}, timeout=120)


def test_the_rknn_engine_gives_the_onnx_engines_pixels(rknn_model):
    rknn = engine(rknn_model)
    assert (rknn.name, rknn.max_batch, rknn.scale) == ("rknn", 1, 3)
    onnx = engine(DEFAULT_SR_MODEL, "onnx")
    tiles = np.random.default_rng(0).random((2, 1, 224, 224), dtype=np.float32)
    np.testing.assert_allclose(rknn.run(tiles), onnx.run(tiles), atol=1e-5)
    image = picture(250, 90, "RGBA")  # two tiles across, alpha
    out = upscale(image, rknn, 1)
    assert out.mode == "RGBA" and out.size == (750, 270)
    difference = np.abs(np.asarray(out, dtype=int) - np.asarray(upscale(image, onnx, 1), dtype=int))
    assert difference.max() <= 1


def test_sr_engine_rknn_and_auto_take_only_rknn_files(rknn_model):
    assert engine(rknn_model, "rknn").name == "rknn"
    with pytest.raises(EngineError, match="the rknn engine runs .rknn files"):
        engine(DEFAULT_SR_MODEL, "rknn")
    with pytest.raises(EngineError, match="the rknn engine runs .rknn files"):
        engine(rknn_model, "onnx")


def broken_rknn(folder: Path) -> Path:
    path = folder / "broken.rknn"
    path.write_bytes(b"RKNN\x00truncated")
    return path


def test_runtime_refusals_name_the_graph_and_the_code(rknn_model, tmp_path):
    broken = engine(broken_rknn(tmp_path))  # logged, then tried again by each run
    for _ in range(2):
        with pytest.raises(RknnError, match=r"RKNN graph 'superres' .*load_rknn returned -1"):
            broken.run(np.zeros((1, 1, 224, 224), np.float32))
    mismatched = engine(rknn_model, tile=112)  # converted for 224 px tiles; the settings say 112
    with pytest.raises(RknnError, match=r"RKNN graph 'superres' .*inference returned None for inputs input float32"):
        upscale(picture(20, 20), mismatched, 1)


def test_an_sr_job_end_to_end_on_an_rknn_sr_worker(make_stack, rknn_model):
    stack = make_stack(SR_ENGINE="rknn", SR_MODEL_PATH=str(rknn_model))
    worker = start_superres_worker(stack)
    base = stack.start_api()
    image = picture(60, 40)
    response = post_superres(base, encoded(image))
    assert response.status_code == 200, response.text
    out = Image.open(io.BytesIO(response.content))
    expected = upscale(image, engine(DEFAULT_SR_MODEL, "onnx"), 1)
    assert out.size == (180, 120)
    assert np.abs(np.asarray(out, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
    record = requests.get(f"{base}/api/jobs/{response.headers['X-Job-Id']}", timeout=10).json()
    assert record["result"]["engine"] == "rknn"
    assert "the RKNN SR graph runs on the x86 stand-in" in worker.log_path.read_text()


@pytest.mark.parametrize(
    ("case", "refusal"), [("broken-file", "load_rknn returned -1"), ("tile-size", "inference returned None")]
)
def test_an_rknn_failure_fails_the_job_and_the_sr_worker_goes_on(make_stack, rknn_model, tmp_path, case, refusal):
    if case == "broken-file":
        settings = {"SR_MODEL_PATH": str(broken_rknn(tmp_path))}
    else:  # tiles of 112 px for a model converted for 224
        settings = {"SR_MODEL_PATH": str(rknn_model), "SR_INPUT_SIZE": "112", "SR_OUTPUT_SIZE": "336"}
    stack = make_stack(**settings)  # SR_ENGINE=auto picks rknn by the suffix
    worker = start_superres_worker(stack)
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    pids = {beat["pid"] for beat in superres_heartbeats(client)}
    for _ in range(2):
        job_id = post_superres(base, encoded(picture(30, 30)), "/api/superres").json()["id"]
        record = poll(base, job_id)
        assert record["status"] == "failed", record
        message = record["error"]["message"]
        assert re.search(rf"engine 'rknn'.*RKNN graph 'superres' .*{refusal}", message), message
    assert worker.poll() is None
    assert {beat["pid"] for beat in superres_heartbeats(client)} == pids, "no pool process died"


def test_the_sr_worker_refuses_sr_engine_rknn_on_an_onnx_model(make_stack):
    code, log = run_to_exit(make_stack(), [sys.executable, "-m", "tasks.superres_worker"], {"SR_ENGINE": "rknn"})
    assert code != 0 and "the rknn engine runs .rknn files" in log, log
