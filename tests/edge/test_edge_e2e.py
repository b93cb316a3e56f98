"""Edge pools end to end: the API, real Redis, Celery workers with WORKER_BACKEND=onnx and =rknn (stand-in)."""

from __future__ import annotations

import io
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import redis
import requests
import yaml
from PIL import Image

from jobs.keys import CUSTOM_QUEUE, WORKERS_PATTERN, generation_queue
from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from tests.client import poll, result_bytes, submit
from tests.edge.test_pipeline import flat_seed_layout
from tests.processes import Stack, stack_env, start_redis

JOB = {"prompt": "a lighthouse at dusk", "seed": 5, "guidance_scale": 2.0}
CORE_MASKS = [1, 2, 4]  # NPU_CORE_0, NPU_CORE_1, NPU_CORE_2


def edge_modes(root) -> dict:
    common = {"default_steps": 4, "default_guidance": 1.0, "scheduler": "lcm", "max_size": 512}
    return {
        "model_root": str(root),
        "default_mode": "cpu",
        "modes": {
            "cpu": {**common, "model": "tiny-lcm-onnx", "default_size": "64x64", "backend": "onnx"},
            "npu": {**common, "model": "tiny-lcm-rknn", "default_size": "64x64", "backend": "rknn"},
            "npu-broken": {**common, "model": "broken-rknn", "default_size": "64x64", "backend": "rknn"},
            # The original Dream Lab's flat layout records no size; this mode declares one the graphs
            # were not converted for.
            "npu-flat": {**common, "model": "flat-rknn", "default_size": "72x72", "backend": "rknn"},
        },
    }


@pytest.fixture(scope="module")
def edge_stack(tmp_path_factory, edge_root, tiny_lcm_onnx, tiny_lcm_rknn):
    broken = edge_root / "broken-rknn"
    if not broken.exists():
        shutil.copytree(tiny_lcm_rknn, broken)
        (broken / "unet" / "model.rknn").write_bytes(b"RKNN\x00truncated")
        flat_seed_layout(tiny_lcm_rknn, edge_root / "flat-rknn")
    tmp = tmp_path_factory.mktemp("edge-stack")
    modes_file = tmp / "modes.yaml"
    modes_file.write_text(yaml.safe_dump(edge_modes(edge_root)))
    server = start_redis(tmp / "redis")
    (tmp / "logs").mkdir()
    stack = Stack(stack_env(server.url, modes_file, tmp / "store"), tmp / "logs")
    try:
        stack.onnx_worker = stack.start_worker({"WORKER_BACKEND": "onnx"})
        stack.rknn_worker = stack.start_worker({"WORKER_BACKEND": "rknn", "NUM_WORKERS": "2"})
        stack.base = stack.start_api()
        yield stack
    finally:
        stack.stop()
        server.stop()


def png(stack, job_id) -> Image.Image:
    return Image.open(io.BytesIO(result_bytes(stack.base, job_id)))


def run(stack, **body) -> dict:
    return poll(stack.base, submit(stack.base, **body)["id"])


def test_onnx_and_rknn_jobs_give_the_torch_backends_image(edge_stack, tiny_lcm_model):
    from workers.torch_backend import TorchBackend

    records = {mode: run(edge_stack, mode=mode, **JOB) for mode in ("cpu", "npu")}
    params = GenerateParams(JOB["prompt"], "", 64, 64, 4, JOB["guidance_scale"], JOB["seed"])
    reference_job = GenerateJob("ref", ResolvedMode("ref", str(tiny_lcm_model), "lcm", "torch"), params)
    reference = np.asarray(TorchBackend().generate(reference_job, lambda *_: None).image).astype(int)
    for mode, record in records.items():
        assert record["status"] == "succeeded", record
        assert record["progress"] == {"step": 4, "total": 4}
        assert (record["result"]["width"], record["result"]["height"], record["result"]["sampler"]) == (64, 64, "LCM")
        image = png(edge_stack, record["id"])
        assert "Sampler: LCM, CFG scale: 2.0, Seed: 5, Size: 64x64, " in image.text["parameters"]
        assert image.text["parameters"].endswith(f"Model: {mode}")
        difference = np.abs(np.asarray(image).astype(int) - reference)
        assert difference.max() <= 1 and difference.mean() < 0.05, (mode, difference.max(), difference.mean())


def test_an_edge_job_of_two_images_runs_them_one_by_one_with_seeds_in_a_row(edge_stack):
    record = run(edge_stack, mode="cpu", n=2, **JOB)
    assert record["status"] == "succeeded", record
    assert [image["seed"] for image in record["result"]["images"]] == [JOB["seed"], JOB["seed"] + 1]
    assert record["progress"] == {"step": 8, "total": 8}, "progress counts both images' steps"
    alone = run(edge_stack, mode="cpu", **{**JOB, "seed": JOB["seed"] + 1})
    second = requests.get(edge_stack.base + record["result"]["images"][1]["url"], timeout=30).content
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(second))), np.asarray(png(edge_stack, alone["id"])))


def test_an_rknn_mode_takes_only_its_converted_size(edge_stack):
    client = redis.Redis.from_url(edge_stack.env["REDIS_URL"])
    before = client.llen(generation_queue("rknn", "npu"))
    for path in ("/api/jobs", "/generate"):
        response = requests.post(
            f"{edge_stack.base}{path}", json={"mode": "npu", "prompt": "x", "size": "128x128"}, timeout=10
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["field"] == "size"
        assert "converted for 64x64 only" in error["message"]
    assert client.llen(generation_queue("rknn", "npu")) == before
    modes = {m["name"]: m for m in requests.get(f"{edge_stack.base}/api/modes", timeout=10).json()["modes"]}
    assert modes["npu"]["fixed_size"] is True and modes["cpu"]["fixed_size"] is False
    assert run(edge_stack, mode="npu", prompt="x", size="64x64")["status"] == "succeeded"


def test_rknn_failures_fail_the_job_naming_graph_and_code_and_the_worker_goes_on(edge_stack):
    broken = run(edge_stack, mode="npu-broken", prompt="x", seed=1)
    assert broken["status"] == "failed"
    assert re.search(r"RKNN graph 'unet' .*load_rknn returned -1", broken["error"]["message"]), broken
    flat = run(edge_stack, mode="npu-flat", prompt="x", seed=1)
    assert flat["status"] == "failed"
    assert re.search(r"RKNN graph 'unet' .*inference returned None", flat["error"]["message"]), flat
    assert edge_stack.rknn_worker.poll() is None
    assert run(edge_stack, mode="npu", prompt="after the failures", seed=2)["status"] == "succeeded"


def test_each_worker_consumes_only_its_backends_queues(edge_stack):
    client = redis.Redis.from_url(edge_stack.env["REDIS_URL"])
    beats = [
        {k.decode(): v.decode() for k, v in client.hgetall(key).items()} for key in client.scan_iter(WORKERS_PATTERN)
    ]
    queues = {beat["backend"]: sorted(yaml.safe_load(beat["queues"])) for beat in beats}
    # The router keeps each worker on one mode of its backend at a time.
    assert queues["onnx"] == [CUSTOM_QUEUE, "gen.onnx.cpu"]
    [custom, mode_queue] = queues["rknn"]
    assert custom == CUSTOM_QUEUE and mode_queue in ("gen.rknn.npu", "gen.rknn.npu-broken", "gen.rknn.npu-flat")


def test_the_rknn_worker_runs_num_workers_jobs_at_once_one_context_per_core(edge_stack):
    jobs = [submit(edge_stack.base, mode="npu", prompt="together", seed=seed) for seed in range(10, 16)]
    assert all(poll(edge_stack.base, job["id"])["status"] == "succeeded" for job in jobs)
    log = edge_stack.rknn_worker.log_path.read_text()
    assert "concurrency: 2 (thread)" in log
    loads = {(int(i), int(m)) for i, m in re.findall(r"RKNN context (\d+) \(core mask (\d+)\): loading", log)}
    assert {index for index, _ in loads} == {0, 1}
    assert all(mask == CORE_MASKS[index] for index, mask in loads)


def test_neither_edge_worker_loads_torch(edge_stack):
    """The onnx and rknn workers, having run a job each, have no part of torch mapped in their memory."""
    for mode in ("cpu", "npu"):
        assert run(edge_stack, mode=mode, **JOB)["status"] == "succeeded"
    for worker in (edge_stack.onnx_worker, edge_stack.rknn_worker):
        mapped = {line.split()[-1] for line in Path(f"/proc/{worker.pid}/maps").read_text().splitlines()}
        assert [path for path in mapped if "/site-packages/torch/" in path] == [], worker.args
        assert any("onnxruntime" in path for path in mapped), "the probe reads the worker's own mappings"


# Last in the module: it stops the rknn worker that the tests above share.
def test_the_rknn_worker_releases_its_contexts_on_shutdown(edge_stack):
    worker = edge_stack.rknn_worker
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert re.search(r"released \d+ RKNNLite objects of 2 RKNN contexts", worker.log_path.read_text())
