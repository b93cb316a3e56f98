"""Fixtures: a tiny model built locally, real redis-server, real workers and API processes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.processes import ROOT, Stack, stack_env, start_redis

MODEL_ROOT = ROOT / ".cache" / "models"
LORA_ROOT = ROOT / ".cache" / "loras"
TINY = "tiny-sd15"
# name -> (seed, format); built for the tiny model by the tiny_loras fixture
LORAS = {"style.safetensors": (1, "diffusers"), "detail-kohya.safetensors": (2, "kohya")}

TEST_MODES = {
    "default_mode": "demo",
    "modes": {
        # Fast: LCM, 4 steps, 64 px.
        "demo": {
            "model": TINY,
            "default_size": "64x64",
            "default_steps": 4,
            "default_guidance": 1.0,
            "scheduler": "lcm",
            "max_size": 512,
        },
        # Slow enough (about 10 s on two cores) to watch progress and to kill a worker mid-job.
        "slow": {
            "model": TINY,
            "default_size": "256x256",
            "default_steps": 100,
            "default_guidance": 7.5,
            "negative_prompt": "blurry",
            "max_size": 512,
        },
        # Served by no worker in the tests: its jobs stay queued.
        "npu": {"model": TINY, "default_size": "64x64", "default_steps": 4, "scheduler": "lcm", "backend": "rknn"},
        # The demo model with two LoRAs, one per file format.
        "styled": {"model": TINY, "default_size": "64x64", "default_steps": 4, "default_guidance": 1.0,
                   "scheduler": "lcm",
                   "loras": ["style.safetensors", {"path": "detail-kohya.safetensors", "strength": 0.5}]},
    },
}


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from workers.tiny_models import build_sd15

    return build_sd15(MODEL_ROOT / TINY, size="tiny")


@pytest.fixture(scope="session")
def tiny_loras(tiny_model) -> dict[str, Path]:
    from workers.tiny_loras import build_lora

    return {name: build_lora(tiny_model, LORA_ROOT / name, seed, fmt) for name, (seed, fmt) in LORAS.items()}


def modes_data() -> dict:
    return {"model_root": str(MODEL_ROOT), "lora_root": str(LORA_ROOT), **copy.deepcopy(TEST_MODES)}


@pytest.fixture(scope="session")
def modes_file(tmp_path_factory, tiny_model, tiny_loras) -> Path:
    path = tmp_path_factory.mktemp("modes") / "modes.yaml"
    path.write_text(yaml.safe_dump(modes_data()))
    return path


@pytest.fixture
def redis_server(tmp_path):
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def make_stack(tmp_path, modes_file, redis_server):
    """Build a Stack on a fresh Redis; processes are stopped after the test."""
    stacks: list[Stack] = []

    def make(**overrides: str) -> Stack:
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        stack = Stack(stack_env(redis_server.url, modes_file, tmp_path / "store", **overrides), logs)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory, modes_file):
    """One worker and the API on their own Redis, shared by a test module."""
    tmp = tmp_path_factory.mktemp("stack")
    server = start_redis(tmp / "redis")
    (tmp / "logs").mkdir()
    stack = Stack(stack_env(server.url, modes_file, tmp / "store"), tmp / "logs")
    try:
        stack.start_worker()
        stack.base = stack.start_api()
        yield stack
    finally:
        stack.stop()
        server.stop()
