"""The onnx backend against the torch CPU backend on the same job, measured in one run.

Full-size SD1.5 architecture (random weights; built into .cache/models/full-sd15
and exported to .cache/models/full-sd15-onnx on first use), 256x256, 4 LCM
steps, guidance 1.0.  Each backend is loaded in its own process and warmed up;
then their timed jobs alternate (``--runs`` each).  Reported: the
median job time, the time per UNet step (between step callbacks) and what
follows the last step (VAE decode and PNG-ready image), peak RSS, the ratio
onnx / torch (target <= 0.7) and how far the two images differ.

    python -m bench.edge [--runs 3] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FULL_MODEL = ROOT / ".cache" / "models" / "full-sd15"
FULL_ONNX = ROOT / ".cache" / "models" / "full-sd15-onnx"
# The original Dream Lab's RK3588 figures (FACTS.md), quoted, not measured here.
SEED_RK3588 = "UNet 2.36 s/step at 384 px, 5.65 s/step at 512 px; VAE decode 5.48 s (384 px), 11-14 s (512 px)"


def ensure_models() -> None:
    if not FULL_MODEL.exists():
        from workers.tiny_models import build_sd15

        build_sd15(FULL_MODEL, size="full")
    if not (FULL_ONNX / "edge.json").exists():
        subprocess.run(
            [sys.executable, "-m", "workers.onnx_export", "--model", str(FULL_MODEL), "--out", str(FULL_ONNX)],
            cwd=ROOT,
            check=True,
        )


class Child:
    """One backend loaded in its own process; it runs the benchmark job whenever asked."""

    def __init__(self, backend_name: str, size: int, image_out: Path) -> None:
        self.name = backend_name
        command = [sys.executable, "-m", "bench.edge", "--child", backend_name, "--size", str(size)]
        self.process = subprocess.Popen(
            [*command, "--image", str(image_out)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.ready = self._reply()

    def run(self) -> dict:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._reply()

    def finish(self) -> dict:
        self.process.stdin.close()
        reply = self._reply()
        self.process.wait(timeout=60)
        return reply

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} benchmark process died (exit {self.process.wait()})")
        return json.loads(line)


def serve(backend_name: str, size: int, image_out: Path) -> None:
    """The child: load, warm up, then time one job per ``run`` line on stdin; at EOF save the image."""
    from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
    from workers import load_backend

    model = FULL_MODEL if backend_name == "torch" else FULL_ONNX
    params = GenerateParams("a lighthouse at dusk", "", size, size, 4, 1.0, 1)
    job = GenerateJob("bench-edge", ResolvedMode("bench", str(model), "lcm", backend_name), params)
    began = time.perf_counter()
    backend = load_backend(backend_name)
    image = backend.generate(job, lambda *_: None).image
    print(json.dumps({"load_and_first_job_s": time.perf_counter() - began}), flush=True)
    for _ in sys.stdin:
        marks: list[float] = []
        began = time.perf_counter()
        image = backend.generate(job, lambda *_, marks=marks: marks.append(time.perf_counter())).image
        end = time.perf_counter()
        steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
        print(
            json.dumps({"job_s": end - began, "unet_steps_s": steps, "after_last_step_s": end - marks[-1]}), flush=True
        )
    np.save(image_out, np.asarray(image))
    print(json.dumps({"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}), flush=True)


def summary(name: str, ready: dict, runs: list[dict], final: dict) -> dict:
    return {
        "backend": name,
        "load_and_first_job_s": ready["load_and_first_job_s"],
        "jobs_s": [r["job_s"] for r in runs],
        "job_s": statistics.median(r["job_s"] for r in runs),
        "unet_step_s": statistics.median(s for r in runs for s in r["unet_steps_s"]),
        "after_last_step_s": statistics.median(r["after_last_step_s"] for r in runs),
        "peak_rss_gib": final["peak_rss_gib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--child", choices=["torch", "onnx"], help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.child, args.size, args.image)
        return
    ensure_models()
    images = {name: ROOT / ".cache" / f"bench-edge-{name}.npy" for name in ("torch", "onnx")}
    # Both stay loaded (about 4.7 + 4.5 GiB); their jobs alternate so both see the same machine load.
    children = [Child(name, args.size, images[name]) for name in ("torch", "onnx")]
    runs: dict[str, list[dict]] = {child.name: [] for child in children}
    for _ in range(args.runs):
        for child in children:
            runs[child.name].append(child.run())
    results = {c.name: summary(c.name, c.ready, runs[c.name], c.finish()) for c in children}
    difference = np.abs(np.load(images["torch"]).astype(int) - np.load(images["onnx"]).astype(int))
    torch_r, onnx_r = results["torch"], results["onnx"]
    print(f"command: python -m bench.edge --runs {args.runs} --size {args.size}")
    print(f"machine: {os.cpu_count()} CPUs; job: {args.size}x{args.size}, 4 LCM steps, guidance 1.0, full-size SD1.5")
    for r in (torch_r, onnx_r):
        print(
            f"{r['backend']:>5}: job {r['job_s']:.2f} s (runs {', '.join(f'{t:.2f}' for t in r['jobs_s'])}), "
            f"UNet step {r['unet_step_s']:.2f} s, after last step {r['after_last_step_s']:.2f} s, "
            f"load + first job {r['load_and_first_job_s']:.1f} s, peak RSS {r['peak_rss_gib']:.1f} GiB"
        )
    print(f"onnx / torch job time: {onnx_r['job_s'] / torch_r['job_s']:.2f}x (target <= 0.70)")
    print(f"onnx / torch UNet step: {onnx_r['unet_step_s'] / torch_r['unet_step_s']:.2f}x")
    print(f"images: max |difference| {difference.max()} levels, mean {difference.mean():.4f}")
    print(f"the original Dream Lab's RK3588 figures (FACTS.md, not measured here): {SEED_RK3588}")


if __name__ == "__main__":
    main()
