"""Super-resolution quality and speed of the shipped weights, measured in one run.

Q: PSNR and SSIM (Y channel, 3-pixel border excluded) of the full SR pipeline (tiling,
   Y-channel model, bicubic chroma) against bicubic upscaling, on held-out images that
   training never saw: each original cropped to a multiple of 3, downscaled x1/3 by PIL
   bicubic, then upscaled x3 both ways.  Target: mean gain >= +0.5 dB PSNR.
T: time for one x3 pass of a 512x512 RGB image (pipeline included: tiles of 224, blend,
   colour) on the torch engine and on ONNX Runtime, alternated, median of --runs after
   one warm-up each.

    python -m bench.superres [--runs 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from PIL import Image

from config import ROOT
from workers.superres import dataset
from workers.superres.engine import EngineConfig, load_engine
from workers.superres.layout import SCALE
from workers.superres.pipeline import upscale_once
from workers.superres.quality import psnr, ssim

WEIGHTS = ROOT / "workers" / "superres" / "weights"


def engine(name: str, threads: int):
    suffix = ".onnx" if name == "onnx" else ".safetensors"
    return load_engine(EngineConfig(name, WEIGHTS / f"subpixel-x3{suffix}", 224, 672, threads))


def quality(sr_engine) -> list[dict]:
    rows = []
    for source in dataset.images(dataset.HELD_OUT):
        high, low = dataset.degrade(dataset.load(source), SCALE)
        reference = dataset.luma(high)
        model = dataset.luma(upscale_once(low, sr_engine))
        cubic = dataset.luma(low.resize(high.size, Image.Resampling.BICUBIC))
        rows.append(
            {
                "image": f"{source.name} ({high.width}x{high.height})",
                "psnr": (psnr(reference, model, SCALE), psnr(reference, cubic, SCALE)),
                "ssim": (ssim(reference, model, SCALE), ssim(reference, cubic, SCALE)),
            }
        )
    return rows


def timing(engines: dict, runs: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    image = dataset.load(dataset.images(dataset.HELD_OUT)[0]).convert("RGB").resize((512, 512))
    noise = rng.normal(0, 4, (512, 512, 3))
    image = Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))
    times: dict[str, list[float]] = {name: [] for name in engines}
    for sr_engine in engines.values():
        upscale_once(image, sr_engine)  # warm-up
    for _ in range(runs):
        for name, sr_engine in engines.items():
            began = time.perf_counter()
            out = upscale_once(image, sr_engine)
            times[name].append(time.perf_counter() - began)
            assert out.size == (1536, 1536)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="engine CPU threads; 0: the library's default")
    args = parser.parse_args()
    engines = {"torch": engine("torch", args.threads), "onnx": engine("onnx", args.threads)}
    print(f"command: python -m bench.superres --runs {args.runs} --threads {args.threads}")
    print("\n| held-out image | PSNR SR | PSNR bicubic | gain | SSIM SR | SSIM bicubic |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = quality(engines["onnx"])
    for row in rows:
        (p_sr, p_bi), (s_sr, s_bi) = row["psnr"], row["ssim"]
        print(f"| {row['image']} | {p_sr:.2f} dB | {p_bi:.2f} dB | {p_sr - p_bi:+.2f} dB | {s_sr:.4f} | {s_bi:.4f} |")
    gains = [r["psnr"][0] - r["psnr"][1] for r in rows]
    ssim_gains = [r["ssim"][0] - r["ssim"][1] for r in rows]
    mean_sr = np.mean([r["psnr"][0] for r in rows])
    mean_bi = np.mean([r["psnr"][1] for r in rows])
    print(f"| mean | {mean_sr:.2f} dB | {mean_bi:.2f} dB | {np.mean(gains):+.2f} dB | | {np.mean(ssim_gains):+.4f} |")
    print(f"\nQ: mean PSNR gain over bicubic {np.mean(gains):+.3f} dB (target >= +0.5 dB)")
    medians = timing(engines, args.runs)
    print(f"\n| one x3 pass, 512x512 RGB -> 1536x1536 | median of {args.runs} |")
    print("| --- | --- |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1000:.0f} ms |")
    print(f"\nT: ONNX Runtime / torch = {medians['onnx'] / medians['torch']:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
