"""Fixtures: a tiny model built locally, real redis-server, real workers and API processes."""

from __future__ import annotations

import copy
import os
import runpy
import uuid
from pathlib import Path

import pytest
import yaml

from tests.processes import (
    FAKE_AWS_ENV,
    OFFLINE_GUARD,
    ROOT,
    Stack,
    guarded_pythonpath,
    own_stack,
    stack_env,
    start_moto,
    start_redis,
)

# The test process too: no hub, and no host beyond loopback.  Every child that inherits the
# environment (CLI runs, export commands, probes) gets the guard through PYTHONPATH.
os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
runpy.run_path(str(OFFLINE_GUARD / "sitecustomize.py"))
os.environ["PYTHONPATH"] = guarded_pythonpath()
# One torch thread in pytest and every process it starts (they inherit the environment): on a
# shared, oversubscribed machine two OpenMP threads made a tiny 4-step job 40x slower (23 s, not
# 0.6 s) as each op waits for both threads to be scheduled.  Set OMP_NUM_THREADS to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")

MODEL_ROOT = ROOT / ".cache" / "models"
LORA_ROOT = ROOT / ".cache" / "loras"
TINY = "tiny-sd15"
# name -> (seed, format); built for the tiny model by the tiny_loras fixture
LORAS = {"style.safetensors": (1, "diffusers"), "detail-kohya.safetensors": (2, "kohya")}
# Every family in both formats: (family, format) -> its name under MODEL_ROOT.
FAMILY_MODELS = {
    (family, fmt): f"tiny-{family}" + (".safetensors" if fmt == "single" else "")
    for family in ("sd15", "sd2", "sdxl", "sdxl-refiner")
    for fmt in ("diffusers", "single")
}
# One mode per family and format, on the model's own scheduler: "<family>" and "<family>-file".
FAMILY_MODES = {
    family + ("-file" if fmt == "single" else ""): {
        "model": name,
        "default_size": "64x64",
        "default_steps": 10 if family == "sdxl-refiner" else 4,
        "default_guidance": 5.0,
        "max_size": 256,
    }
    for (family, fmt), name in FAMILY_MODELS.items()
}

# Inpainting models (9 input channels): (family, format) -> its name under MODEL_ROOT.
INPAINTING_MODELS = {
    (family, fmt): f"tiny-{family}-inpainting" + (".safetensors" if fmt == "single" else "")
    for family in ("sd15", "sdxl")
    for fmt in ("diffusers", "single")
}

# Tiny ControlNets: (family, format) -> its name under MODEL_ROOT (SD1.5's single file in the original layout).
CONTROLNETS = {
    (family, fmt): f"tiny-controlnet-{family}" + (".safetensors" if fmt == "single" else "")
    for family in ("sd15", "sdxl")
    for fmt in ("diffusers", "single")
}

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
        "styled": {
            "model": TINY,
            "default_size": "64x64",
            "default_steps": 4,
            "default_guidance": 1.0,
            "scheduler": "lcm",
            "loras": ["style.safetensors", {"path": "detail-kohya.safetensors", "strength": 0.5}],
        },
        **FAMILY_MODES,
        # The demo model with two ControlNets: an original-layout single file and a folder.
        "control": {
            "model": TINY,
            "default_size": "64x64",
            "default_steps": 4,
            "default_guidance": 1.0,
            "scheduler": "lcm",
            "controlnets": [
                {"path": CONTROLNETS[("sd15", "single")], "name": "edges", "scale": 0.8},
                CONTROLNETS[("sd15", "diffusers")],
            ],
        },
        # An inpainting model as a single file: inpainting jobs only.
        "sd15-inpaint": {
            "model": INPAINTING_MODELS[("sd15", "single")],
            "default_size": "64x64",
            "default_steps": 4,
            "default_guidance": 5.0,
        },
    },
}


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from workers.tiny_models import build_sd15

    return build_sd15(MODEL_ROOT / TINY, size="tiny")


@pytest.fixture(scope="session")
def family_models(tiny_model) -> dict[tuple[str, str], Path]:
    """Tiny models of every family in both formats (diffusers folder, original-layout single file)."""
    from workers.tiny_models import build

    return {key: build(key[0], MODEL_ROOT / name, fmt=key[1]) for key, name in FAMILY_MODELS.items()}


@pytest.fixture(scope="session")
def inpainting_models(tiny_model) -> dict[tuple[str, str], Path]:
    """Tiny inpainting models (9 input channels), SD1.5 and SDXL, in both formats."""
    from workers.tiny_models import build

    return {
        key: build(key[0], MODEL_ROOT / name, fmt=key[1], inpainting=True) for key, name in INPAINTING_MODELS.items()
    }


@pytest.fixture(scope="session")
def tiny_controlnets(family_models) -> dict[tuple[str, str], Path]:
    """Tiny ControlNets for the SD1.5 and SDXL diffusers models, as folders and single files."""
    from workers.tiny_controlnets import build_controlnet

    return {
        key: build_controlnet(family_models[(key[0], "diffusers")], MODEL_ROOT / name, fmt=key[1])
        for key, name in CONTROLNETS.items()
    }


@pytest.fixture(scope="session")
def tiny_loras(tiny_model) -> dict[str, Path]:
    from workers.tiny_loras import build_lora

    return {name: build_lora(tiny_model, LORA_ROOT / name, seed, fmt) for name, (seed, fmt) in LORAS.items()}


def modes_data() -> dict:
    return {"model_root": str(MODEL_ROOT), "lora_root": str(LORA_ROOT), **copy.deepcopy(TEST_MODES)}


@pytest.fixture(scope="session")
def modes_file(tmp_path_factory, family_models, inpainting_models, tiny_controlnets, tiny_loras) -> Path:
    path = tmp_path_factory.mktemp("modes") / "modes.yaml"
    path.write_text(yaml.safe_dump(modes_data()))
    return path


@pytest.fixture
def redis_server(tmp_path):
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_server, monkeypatch) -> str:
    """A fresh, empty bucket on the moto server; this process signs with fake credentials."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    moto_server.client().create_bucket(Bucket=bucket)
    return bucket


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
    with own_stack(tmp_path_factory.mktemp("stack"), modes_file) as stack:
        stack.start_worker()
        stack.base = stack.start_api()
        yield stack
