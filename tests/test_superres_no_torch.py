"""An SR worker on ONNX Runtime needs no torch: its whole job path imports none."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import ROOT

PROBE = """
import sys
import numpy as np
import tasks.superres_worker  # the worker's entry point, with the Celery app and every task
from config import SuperResSettings
from tasks.superres_context import engine_config
from workers.superres.engine import load_engine, preflight
from workers.superres.pipeline import upscale
from PIL import Image

config = engine_config(SuperResSettings.from_env())
preflight(config)
engine = load_engine(config)
assert upscale(Image.new("RGB", (10, 10)), engine, 1).size == (30, 30)
print(engine.name, sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules))
"""


def test_onnx_superres_worker_never_imports_torch():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "onnx []", out.stdout
