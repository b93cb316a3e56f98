"""Edge settings: modes.yaml rules for onnx/rknn modes, the fixed-size 400, NUM_WORKERS, the worker pool."""

from __future__ import annotations

import pytest
import yaml

from api.errors import ApiError
from api.validation import parse_generation
from config import Settings
from modes import ModesError, load_modes
from tasks.worker import pool_options


def modes(tmp_path, **spec):
    path = tmp_path / "modes.yaml"
    mode = {"model": "m", "default_size": "512x512", "scheduler": "lcm", "default_steps": 4, **spec}
    path.write_text(yaml.safe_dump({"model_root": "models", "modes": {"edge": mode}}))
    return load_modes(path)


@pytest.mark.parametrize("backend", ["onnx", "rknn"])
def test_edge_modes_must_use_the_lcm_scheduler(tmp_path, backend):
    with pytest.raises(ModesError, match=f"mode 'edge': backend '{backend}' runs the LCM pipeline only"):
        modes(tmp_path, backend=backend, scheduler="euler")


@pytest.mark.parametrize("backend", ["onnx", "rknn"])
def test_edge_modes_cannot_have_loras(tmp_path, backend):
    with pytest.raises(ModesError, match=f"mode 'edge': backend '{backend}' cannot apply LoRAs"):
        modes(tmp_path, backend=backend, loras=["style.safetensors"])


def test_only_rknn_modes_have_a_fixed_size(tmp_path):
    assert modes(tmp_path, backend="rknn").modes["edge"].describe()["fixed_size"] is True
    assert modes(tmp_path, backend="onnx").modes["edge"].fixed_size is False
    assert modes(tmp_path, backend="torch").modes["edge"].fixed_size is False


def test_an_rknn_mode_accepts_its_size_and_refuses_others(tmp_path):
    config = modes(tmp_path, backend="rknn", default_size="384x512")
    _, omitted, _ = parse_generation({"mode": "edge", "prompt": "x"}, config)
    _, explicit, _ = parse_generation({"mode": "edge", "prompt": "x", "size": "384x512"}, config)
    assert (omitted.width, omitted.height) == (explicit.width, explicit.height) == (384, 512)
    with pytest.raises(ApiError) as error:
        parse_generation({"mode": "edge", "prompt": "x", "size": "512x384"}, config)
    assert (error.value.status, error.value.field) == (400, "size")
    assert "converted for 384x512 only" in str(error.value.message)


def test_an_onnx_mode_takes_any_size(tmp_path):
    _, params, _ = parse_generation({"mode": "edge", "prompt": "x", "size": "256x192"}, modes(tmp_path, backend="onnx"))
    assert (params.width, params.height) == (256, 192)


def test_num_workers_and_context_cfgs_from_the_environment(monkeypatch):
    settings = Settings.from_env()
    assert (settings.num_workers, settings.use_rknn_context_cfgs) == (1, True)
    monkeypatch.setenv("NUM_WORKERS", "3")
    monkeypatch.setenv("USE_RKNN_CONTEXT_CFGS", "0")
    settings = Settings.from_env()
    assert (settings.num_workers, settings.use_rknn_context_cfgs) == (3, False)
    monkeypatch.setenv("USE_RKNN_CONTEXT_CFGS", "maybe")
    with pytest.raises(SystemExit, match="USE_RKNN_CONTEXT_CFGS='maybe' is not a boolean"):
        Settings.from_env()


def test_workers_run_the_threads_pool_one_thread_per_job_at_once():
    from workers.edge.backends import OnnxBackend, RknnBackend

    assert pool_options(OnnxBackend()) == ["--pool=threads", "--concurrency=1"]
    assert pool_options(RknnBackend(1, True)) == ["--pool=threads", "--concurrency=1"]
    assert pool_options(RknnBackend(3, True)) == ["--pool=threads", "--concurrency=3"]
