"""A smoke run of the training script's entry point: one step, into a temporary folder, then the SR
engines run what it wrote.  The figures of a real run are in workers/superres/weights/PROVENANCE.md."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from tests.processes import ROOT
from tests.sr_helpers import picture
from workers.superres.engine import EngineConfig, load_engine
from workers.superres.layout import LAYERS, SHAPES
from workers.superres.model import SubPixelCNN
from workers.superres.pipeline import upscale_once
from workers.superres.weights_io import read_weights

SHIPPED = ROOT / "workers" / "superres" / "weights"


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.superres.train", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    shipped = {path.name: path.read_bytes() for path in SHIPPED.iterdir()}
    out = tmp_path_factory.mktemp("trained") / "weights"
    done = train("--steps", "1", "--batch", "1", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "step 1/1" in done.stdout and "held-out mean PSNR gain" in done.stdout
    assert {path.name: path.read_bytes() for path in SHIPPED.iterdir()} == shipped, "the shipped weights are untouched"
    return out


def test_training_writes_safetensors_onnx_and_provenance(trained):
    assert sorted(path.name for path in trained.iterdir()) == [
        "PROVENANCE.md",
        "subpixel-x3.onnx",
        "subpixel-x3.safetensors",
    ]
    with safe_open(str(trained / "subpixel-x3.safetensors"), "np") as tensors:
        assert sorted(tensors.keys()) == sorted(f"{layer}.{kind}" for layer in LAYERS for kind in ("weight", "bias"))
        assert tensors.metadata()["architecture"].startswith("Sub-Pixel CNN x3")
        assert tuple(tensors.get_tensor("conv2.weight").shape) == SHAPES["conv2"]
    from_safetensors = read_weights(trained / "subpixel-x3.safetensors")
    from_onnx = read_weights(trained / "subpixel-x3.onnx")
    for name, tensor in from_safetensors.items():
        np.testing.assert_array_equal(from_onnx[name], tensor, err_msg=name)

    initial = SubPixelCNN()
    initial.init_weights(0)  # the script's seed
    start = initial.state_dict()
    moved = [name for name, tensor in from_safetensors.items() if not np.array_equal(start[name].numpy(), tensor)]
    assert sorted(moved) == sorted(from_safetensors), "one step of training changed every tensor"

    provenance = (trained / "PROVENANCE.md").read_text()
    assert "python -m workers.superres.train --steps 1 --batch 1 " in provenance
    for path in (trained / "subpixel-x3.safetensors", trained / "subpixel-x3.onnx"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"| `{path.name}` | {path.stat().st_size} | `{digest}` |" in provenance


def test_the_sr_engines_run_what_training_wrote(trained):
    image = picture(40, 30)
    outputs = {}
    for name in ("subpixel-x3.onnx", "subpixel-x3.safetensors"):
        engine = load_engine(EngineConfig("auto", trained / name, 224, 672, threads=1))
        out = upscale_once(image, engine)
        assert out.size == (120, 90) and out.mode == "RGB"
        outputs[engine.name] = np.asarray(out, dtype=np.int16)
    assert sorted(outputs) == ["onnx", "torch"]
    assert np.abs(outputs["onnx"] - outputs["torch"]).max() <= 1  # 8-bit rounding of equal floats
    bicubic = np.asarray(image.resize((120, 90), Image.Resampling.BICUBIC), dtype=np.int16)
    assert not np.array_equal(outputs["torch"], bicubic), "the model, not a bicubic fallback, made the pixels"


@pytest.mark.parametrize("option", ["--steps", "--batch", "--threads"])
def test_counts_below_one_are_refused_before_any_work(option, tmp_path):
    done = train(option, "0", "--out", str(tmp_path / "weights"))
    assert done.returncode == 2 and f"argument {option}: must be at least 1, not 0" in done.stderr, done.stderr
    assert not (tmp_path / "weights").exists()
