"""The tests' network guard works, and the project's loading path never needs it."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.processes import ROOT, stack_env


def test_this_process_cannot_reach_beyond_loopback():
    with pytest.raises(RuntimeError, match="tests run offline: socket.getaddrinfo to 'huggingface.co' refused"):
        socket.getaddrinfo("huggingface.co", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_a_child_with_the_inherited_environment_cannot_reach_beyond_loopback():
    """CLI runs, export commands and probes start with pytest's environment: the guard is on their PYTHONPATH."""
    code = "import socket; socket.getaddrinfo('huggingface.co', 443)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "tests run offline: socket.getaddrinfo to 'huggingface.co' refused" in result.stderr


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_hub_lookup_in_a_worker_environment_is_refused(tmp_path, family_models):
    """diffusers' own single-file path (no shipped config, hub allowed) is stopped by the guard in a child."""
    env = stack_env("redis://127.0.0.1:1/0", tmp_path / "modes.yaml", tmp_path / "store", HF_HUB_OFFLINE="0")
    path = family_models[("sd15", "single")]
    code = f"from diffusers import StableDiffusionPipeline; StableDiffusionPipeline.from_single_file({str(path)!r})"
    result = run_python(code, env)
    assert result.returncode != 0
    assert "tests run offline: socket.getaddrinfo to 'huggingface.co' refused" in result.stderr


def test_the_loader_needs_no_network_even_with_the_hub_allowed(tmp_path, family_models):
    """With HF_HUB_OFFLINE=0 left in the environment, loading single files still makes no network access."""
    env = stack_env("redis://127.0.0.1:1/0", tmp_path / "modes.yaml", tmp_path / "store", HF_HUB_OFFLINE="0")
    paths = [str(family_models[(family, "single")]) for family in ("sd15", "sdxl-refiner")]
    code = f"import torch, workers.loader as l; [l.load_pipeline(p, torch.float32) for p in {paths!r}]"
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr[-3000:]
