"""Train the Sub-Pixel CNN (x3) on the CC0 / public-domain images of workers/superres/dataset.py.

Writes the weights as safetensors and as ONNX in the model zoo's super-resolution-10
layout (input ``input`` [batch, 1, 224, 224] -> output ``output`` [batch, 1, 672, 672]),
and PROVENANCE.md beside them: images, licences, command, settings, held-out figures
and file hashes.  The 3000 steps of the shipped weights took 987 s (about 16 minutes) of
wall-clock time on one CPU thread (weights/PROVENANCE.md)::

    python -m workers.superres.train [--steps 3000] [--batch 32] [--threads 1] [--out workers/superres/weights]

``--out`` is the folder the three files go to (it is created; files there are replaced).
A smoke run, seconds long, that checks the script end to end without touching the shipped
weights (tests/test_superres_train.py runs it): ``--steps 1 --batch 1 --out /tmp/sr-smoke``.
``--steps``, ``--batch`` and ``--threads`` must be at least 1.

Needs the ``sr-train`` extra (scikit-image, for its bundled images).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from workers.superres import dataset
from workers.superres.layout import SCALE
from workers.superres.model import SubPixelCNN
from workers.superres.quality import psnr, ssim

WEIGHTS = Path(__file__).with_name("weights")
STEM = "subpixel-x3"
PATCH = 32  # low-res patch side; the high-res target is PATCH * SCALE


@dataclass(frozen=True)
class Pair:
    name: str
    high: np.ndarray  # Y in [0, 1], H x W
    low: np.ndarray  # Y in [0, 1], H/3 x W/3


def pairs(role: str) -> list[Pair]:
    out = []
    for image in dataset.images(role):
        high, low = dataset.degrade(dataset.load(image), SCALE)
        out.append(Pair(image.name, dataset.luma(high), dataset.luma(low)))
    return out


def sample_batch(data: list[Pair], size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned patches, weighted by image area, with random flips and quarter turns."""
    areas = np.array([p.low.size for p in data], dtype=np.float64)
    picks = rng.choice(len(data), size=size, p=areas / areas.sum())
    lows, highs = [], []
    for index in picks:
        pair = data[index]
        top = rng.integers(0, pair.low.shape[0] - PATCH + 1)
        left = rng.integers(0, pair.low.shape[1] - PATCH + 1)
        low = pair.low[top : top + PATCH, left : left + PATCH]
        high = pair.high[top * SCALE : (top + PATCH) * SCALE, left * SCALE : (left + PATCH) * SCALE]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        low, high = np.rot90(low, turns), np.rot90(high, turns)
        if flip:
            low, high = low[:, ::-1], high[:, ::-1]
        lows.append(low.copy())
        highs.append(high.copy())
    return torch.from_numpy(np.stack(lows)[:, None]), torch.from_numpy(np.stack(highs)[:, None])


def train(model: SubPixelCNN, data: list[Pair], steps: int, batch: int, lr: float, seed: int) -> float:
    """Adam on MSE with a cosine learning-rate decay; returns the seconds it took."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    began = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        low, high = sample_batch(data, batch, rng)
        loss = torch.nn.functional.mse_loss(model(low), high)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == steps:
            print(f"step {step}/{steps}  loss {loss.item():.6f}  {time.perf_counter() - began:.0f}s", flush=True)
    model.eval()
    return time.perf_counter() - began


def bicubic_y(low: np.ndarray) -> np.ndarray:
    image = Image.fromarray(np.round(low * 255).astype(np.uint8))
    up = image.resize((low.shape[1] * SCALE, low.shape[0] * SCALE), Image.Resampling.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 255.0


def evaluate(model: SubPixelCNN, data: list[Pair]) -> list[dict]:
    """Y-channel PSNR / SSIM of the model and of bicubic against the originals (whole images, border 3)."""
    rows = []
    with torch.inference_mode():
        for pair in data:
            out = model(torch.from_numpy(pair.low)[None, None])[0, 0].clamp(0, 1).numpy()
            cubic = bicubic_y(pair.low)
            rows.append(
                {
                    "image": pair.name,
                    "psnr_model": round(psnr(pair.high, out, SCALE), 3),
                    "psnr_bicubic": round(psnr(pair.high, cubic, SCALE), 3),
                    "ssim_model": round(ssim(pair.high, out, SCALE), 4),
                    "ssim_bicubic": round(ssim(pair.high, cubic, SCALE), 4),
                }
            )
    return rows


def save(model: SubPixelCNN, out: Path) -> tuple[Path, Path]:
    """safetensors (keys conv1.weight ... conv4.bias) and ONNX in the zoo's layout."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    safetensors_path = out / f"{STEM}.safetensors"
    save_file(tensors, str(safetensors_path), metadata={"architecture": "Sub-Pixel CNN x3 (Shi et al. 2016)"})
    onnx_path = out / f"{STEM}.onnx"
    export_onnx(model, onnx_path)
    for path in (safetensors_path, onnx_path):
        path.chmod(0o644)  # safetensors writes 0600; containers run as another user
    return safetensors_path, onnx_path


def export_onnx(model: SubPixelCNN, path: Path, tile: int = 224, dynamic_batch: bool = True) -> None:
    """The model zoo's super-resolution-10 layout: ``input`` [batch, 1, tile, tile] -> ``output``."""
    torch.onnx.export(
        model.eval(),
        torch.zeros(1, 1, tile, tile),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}} if dynamic_batch else None,
        opset_version=17,
        dynamo=False,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_provenance(out: Path, files: tuple[Path, Path], args: argparse.Namespace, seconds: float, rows: list[dict]):
    lines = [
        "# Provenance of the shipped super-resolution weights",
        "",
        "Written by `workers/superres/train.py`; do not edit by hand. Reproduce with:",
        "",
        "```",
        f"python -m workers.superres.train --steps {args.steps} --batch {args.batch} --lr {args.lr} "
        f"--seed {args.seed} --threads {args.threads}",
        "```",
        "",
        'Model: the Sub-Pixel CNN of Shi et al. 2016 ("Real-Time Single Image and Video Super-Resolution',
        'Using an Efficient Sub-Pixel Convolutional Neural Network"), x3 on the Y channel, in the layout of',
        "the ONNX model zoo's super-resolution-10 (no zoo weights used: trained from an orthogonal init).",
        f"Training: {args.steps} steps of Adam (lr {args.lr}, cosine decay), batches of {args.batch} random",
        f"{PATCH}x{PATCH} low-res patches (flips, quarter turns), MSE on Y; low-res made by PIL bicubic x1/3.",
        f"Trained in {seconds:.0f} s (wall clock) on {args.threads} CPU thread(s), "
        f"torch {torch.__version__}, {platform.machine()}.",
        "",
        "## Images (bundled in the scikit-image wheel on PyPI, `skimage/data`)",
        "",
        "| image | file | role | licence | source |",
        "| --- | --- | --- | --- | --- |",
    ]
    for image in dataset.IMAGES:
        lines.append(f"| {image.name} | `{image.file}` | {image.role} | {image.licence} | {image.source} |")
    lines += [
        "",
        "Held-out images were never seen in training. Licences as stated in scikit-image's",
        "`skimage/data/_fetchers.py` docstrings (scikit-image is BSD-3-Clause).",
        "",
        "## Held-out quality at the end of training (whole image, Y channel, 3-pixel border excluded)",
        "",
        "| image | PSNR model | PSNR bicubic | SSIM model | SSIM bicubic |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['image']} | {row['psnr_model']:.2f} | {row['psnr_bicubic']:.2f} | "
            f"{row['ssim_model']:.4f} | {row['ssim_bicubic']:.4f} |"
        )
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "| --- | --- | --- |"]
    for path in files:
        lines.append(f"| `{path.name}` | {path.stat().st_size} | `{sha256(path)}` |")
    (out / "PROVENANCE.md").write_text("\n".join(lines) + "\n")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive, default=3000)
    parser.add_argument("--batch", type=positive, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # tiny gradients late in training are otherwise 10x slower on CPU
    torch.manual_seed(args.seed)
    model = SubPixelCNN()
    model.init_weights(args.seed)
    seconds = train(model, pairs(dataset.TRAIN), args.steps, args.batch, args.lr, args.seed)
    rows = evaluate(model, pairs(dataset.HELD_OUT))
    for row in rows:
        print(json.dumps(row))
    gain = np.mean([r["psnr_model"] - r["psnr_bicubic"] for r in rows])
    print(f"held-out mean PSNR gain over bicubic: {gain:+.3f} dB; trained in {seconds:.0f}s")
    files = save(model, args.out)
    write_provenance(args.out, files, args, seconds, rows)
    print("wrote", *files, args.out / "PROVENANCE.md")


if __name__ == "__main__":
    main()
