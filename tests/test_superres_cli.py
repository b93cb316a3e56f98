"""The command-line form (one file, no server) and the shipped weights' quality on a held-out image."""

from __future__ import annotations

import subprocess
import sys

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


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.superres", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
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
