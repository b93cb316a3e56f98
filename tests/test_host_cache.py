"""The torch worker's host-RAM model cache through real processes: a switch back is a cache hit,
evictions are logged and reported in /api/vram, and HOST_CACHE_MB=0 turns the cache off."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import requests
import yaml
from PIL import Image

from tests.client import poll, result_bytes, submit
from tests.conftest import MODEL_ROOT, TINY, modes_data
from tests.processes import wait_for

# Two more tiny SD1.5 models with their own weights: each holds about 45 MiB of fp32 weights.
OTHER_MODELS = {"big": ("tiny-sd15-b", 99), "third": ("tiny-sd15-c", 98)}


def cache_stack(make_stack, tmp_path: Path, **env: str) -> tuple[str, Path]:
    """One torch worker and the API with modes ``big`` and ``third`` beside the test modes."""
    from workers.tiny_models import build_sd15

    data = modes_data()
    for mode, (folder, seed) in OTHER_MODELS.items():
        build_sd15(MODEL_ROOT / folder, size="tiny", seed=seed)
        data["modes"][mode] = {"model": folder, "default_size": "64x64", "default_steps": 2, "scheduler": "lcm"}
    modes = tmp_path / "modes.yaml"
    modes.write_text(yaml.safe_dump(data))
    stack = make_stack(MODES_FILE=str(modes), **env)
    worker = stack.start_worker()
    return stack.start_api(), worker.log_path


def run(base: str, mode: str, seed: int = 5) -> str:
    """Submit a job for ``mode`` (the router moves the one worker there) and wait for it to succeed."""
    job = submit(base, mode=mode, prompt=f"a job for {mode}", seed=seed)
    record = poll(base, job["id"])
    assert record["status"] == "succeeded", record
    return job["id"]


def pixels(base: str, job_id: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result_bytes(base, job_id))).convert("RGB"))


def worker_view(base: str, mode: str) -> tuple[dict, dict]:
    """The one worker's /api/vram memory and /api/models/status heartbeat, once it reports ``mode`` loaded."""

    def reported() -> tuple[dict, dict] | None:
        [memory] = [w["memory"] for w in requests.get(f"{base}/api/vram", timeout=60).json()["workers"]]
        [status] = requests.get(f"{base}/api/models/status", timeout=60).json()["workers"]
        loaded = [model["mode"] for model in memory["models"]]
        return (memory, status) if loaded == [mode] and status["mode"] == mode else None

    return wait_for(reported, 30, f"the heartbeat to show mode {mode} loaded")


def loads(log: Path, mode: str, source: str) -> int:
    return log.read_text().count(f"for mode {mode} from {source}")


def test_switching_back_takes_the_model_from_the_host_cache(make_stack, tmp_path, tiny_model):
    base, log = cache_stack(make_stack, tmp_path)
    first = run(base, "demo", seed=7)
    run(base, "styled")  # the same model with two LoRAs: they must not follow it into the cache
    run(base, "big")
    memory, status = worker_view(base, "big")
    [entry] = memory["cache"]["entries"]
    assert entry["model"].endswith(TINY) and entry["where"] == "host" and entry["bytes"] > 1_000_000
    assert entry["modes"] == ["demo", "styled"]
    assert set(status["cached"]) == {"big", "demo", "styled"}

    again = run(base, "demo", seed=7)
    assert loads(log, "demo", "the host cache") == 1 and loads(log, "demo", "disk") == 1
    assert loads(log, "big", "disk") == 1
    assert np.array_equal(pixels(base, again), pixels(base, first)), "a cached model must give the same pixels"

    memory, status = worker_view(base, "demo")
    cache = memory["cache"]
    assert [e["modes"] for e in cache["entries"]] == [["big"]] and cache["hits"] == 1 and cache["evictions"] == 0
    assert cache["bytes"] == cache["entries"][0]["bytes"] <= cache["budget_bytes"]
    assert memory["models_bytes"] == entry["bytes"]  # the loaded model only; the cache is reported apart
    assert set(status["cached"]) == {"big", "demo", "styled"}
    fleet = requests.get(f"{base}/api/vram", timeout=60).json()["fleet"]
    assert fleet["cached_bytes"] == cache["bytes"]


def test_a_small_budget_evicts_the_least_recently_used_model(make_stack, tmp_path, tiny_model):
    base, log = cache_stack(make_stack, tmp_path, HOST_CACHE_MB="60")  # room for one tiny model
    run(base, "demo")
    run(base, "big")
    third = run(base, "third")  # big goes into the cache: demo is evicted to make room
    evicted = [line for line in log.read_text().splitlines() if "evicted" in line]
    assert len(evicted) == 1 and f"job {third}: evicted " in evicted[0], evicted
    assert f"/{TINY} from the host cache, freed " in evicted[0]
    memory, status = worker_view(base, "third")
    cache = memory["cache"]
    assert [e["modes"] for e in cache["entries"]] == [["big"]]
    assert cache["evictions"] == 1 and cache["budget_bytes"] == 60 * 1024 * 1024
    assert "demo" not in status["cached"] and "big" in status["cached"]

    run(base, "demo")  # evicted: from disk again
    assert loads(log, "demo", "disk") == 2 and loads(log, "demo", "the host cache") == 0
    memory, _ = worker_view(base, "demo")
    assert [e["modes"] for e in memory["cache"]["entries"]] == [["third"]] and memory["cache"]["evictions"] == 2


def test_host_cache_mb_zero_turns_the_cache_off(make_stack, tmp_path, tiny_model):
    base, log = cache_stack(make_stack, tmp_path, HOST_CACHE_MB="0")
    run(base, "demo")
    run(base, "big")
    run(base, "demo")
    assert loads(log, "demo", "disk") == 2 and loads(log, "demo", "the host cache") == 0
    memory, status = worker_view(base, "demo")
    assert memory["cache"] == {"budget_bytes": 0, "bytes": 0, "evictions": 0, "hits": 0, "entries": []}
    assert status["cached"] == ["demo"]


def test_a_load_that_fits_only_without_the_cache_evicts_instead_of_failing(make_stack, tmp_path, tiny_model):
    # 100 MiB holds two tiny models (45 MiB each), not three: loading a third evicts the cached one.
    base, log = cache_stack(make_stack, tmp_path, MEMORY_LIMIT_MB="100")
    run(base, "demo")
    run(base, "big")
    memory, _ = worker_view(base, "big")
    assert [e["modes"] for e in memory["cache"]["entries"]] == [["demo"]]
    third = run(base, "third")
    assert f"job {third}: evicted " in log.read_text()
    memory, _ = worker_view(base, "third")
    assert [e["modes"] for e in memory["cache"]["entries"]] == [["big"]] and memory["cache"]["evictions"] == 1
    assert memory["cache"]["bytes"] + memory["models_bytes"] <= memory["limit_bytes"]
