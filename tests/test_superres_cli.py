"""The command-line form (one file, no server) and the shipped weights' quality on a held-out image."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.processes import ROOT
from tests.sr_helpers import encoded, picture
from workers.superres import dataset
from workers.superres.engine import EngineConfig, load_engine
from workers.superres.layout import SCALE
from workers.superres.pipeline import upscale_once
from workers.superres.quality import psnr

WEIGHTS = ROOT / "workers" / "superres" / "weights"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.superres", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_cli_upscales_one_file(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(encoded(picture(20, 14, "RGBA")))
    done = run_cli(str(source), "--magnitude", "2")
    assert done.returncode == 0, done.stderr
    out = Image.open(tmp_path / "in-x9.png")
    assert out.size == (180, 126) and out.mode == "RGBA"
    done = run_cli(str(source), "-o", str(tmp_path / "out.jpg"), "--format", "jpeg", "--quality", "80")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"


def test_cli_refuses_bad_files_with_a_reason(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(encoded(picture(60, 60))[:500])
    done = run_cli(str(bad))
    assert done.returncode == 2 and "truncated or corrupt" in done.stderr
    done = run_cli(str(tmp_path / "missing.png"))
    assert done.returncode == 2 and "No such file" in done.stderr


def test_cli_with_112_pixel_tiles_on_onnx_and_torch(tmp_path):
    """SR_INPUT_SIZE=112 / SR_OUTPUT_SIZE=336 with an ONNX model exported for 112 px tiles, and with the torch
    engine: the same pixels as the shipped model at its default 224 px tiles."""
    import torch

    from workers.superres.model import SubPixelCNN
    from workers.superres.train import export_onnx
    from workers.superres.weights_io import read_weights

    model = SubPixelCNN()
    weights = read_weights(WEIGHTS / "subpixel-x3.safetensors")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    export_onnx(model, tmp_path / "x3-112.onnx", tile=112)
    source = tmp_path / "in.png"
    source.write_bytes(encoded(picture(150, 100)))
    done = run_cli(str(source), "-o", str(tmp_path / "default.png"))
    assert done.returncode == 0, done.stderr
    default = np.asarray(Image.open(tmp_path / "default.png"), dtype=np.int16)
    tiles_112 = {"SR_INPUT_SIZE": "112", "SR_OUTPUT_SIZE": "336"}
    for engine, model_path in (("onnx", tmp_path / "x3-112.onnx"), ("torch", WEIGHTS / "subpixel-x3.safetensors")):
        out = tmp_path / f"{engine}-112.png"
        done = run_cli(str(source), "-o", str(out), "--engine", engine, "--model", str(model_path), env=tiles_112)
        assert done.returncode == 0, done.stderr
        assert f"450x300 ({engine}," in done.stdout
        assert np.abs(np.asarray(Image.open(out), dtype=np.int16) - default).max() <= 1, engine
    done = run_cli(str(source), "--model", str(WEIGHTS / "subpixel-x3.onnx"), env=tiles_112)
    assert done.returncode == 2 and "set SR_INPUT_SIZE=224" in done.stderr


@pytest.mark.parametrize("weights", ["subpixel-x3.onnx", "subpixel-x3.safetensors"])
def test_shipped_weights_beat_bicubic_on_a_held_out_image(weights):
    """A guard against shipping broken weights (the figures themselves are in docs/benchmarks.md)."""
    engine = load_engine(EngineConfig("auto", WEIGHTS / weights, 224, 672, threads=1))
    [chelsea] = [image for image in dataset.images(dataset.HELD_OUT) if image.name == "chelsea"]
    high, low = dataset.degrade(dataset.load(chelsea), SCALE)
    reference = dataset.luma(high)
    gain = psnr(reference, dataset.luma(upscale_once(low, engine)), SCALE) - psnr(
        reference, dataset.luma(low.resize(high.size, Image.Resampling.BICUBIC)), SCALE
    )
    assert gain > 0.2, f"the shipped weights gain only {gain:+.2f} dB over bicubic on a held-out image"
