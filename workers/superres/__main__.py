"""Upscale one image file without the server::

    python -m workers.superres IN [-o OUT] [--magnitude 1-3] [--format png|jpeg] [--quality 1-100]
                               [--engine auto|torch|onnx|rknn] [--model PATH]

The same checks, engine and pipeline as an SR worker; settings default to the SR_* variables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from config import SuperResSettings
from jobs.images import ImageRejected, decode
from jobs.superres import FORMATS, MAX_MAGNITUDE, pixel_limit_message
from workers.superres.encode import encode, png_text
from workers.superres.engine import EngineConfig, EngineError, default_threads, load_engine
from workers.superres.pipeline import upscale


def parse_args(argv: list[str], sr: SuperResSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.superres", description="Upscale one image file.")
    parser.add_argument("input", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="default: IN's name with -x<factor> and the format's suffix")
    parser.add_argument("--magnitude", type=int, default=1, choices=range(1, MAX_MAGNITUDE + 1))
    parser.add_argument("--format", dest="out_format", choices=sorted(FORMATS), default="png")
    parser.add_argument("--quality", type=int, default=95, choices=range(1, 101), metavar="1-100")
    parser.add_argument("--engine", default=sr.engine, help="auto (by the model's suffix), torch, onnx or rknn")
    parser.add_argument("--model", type=Path, default=sr.model_path)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    sr = SuperResSettings.from_env()
    args = parse_args(argv, sr)
    config = EngineConfig(args.engine, args.model, sr.input_size, sr.output_size, default_threads(1))
    try:
        data = args.input.read_bytes()
        image = decode(data, sr.max_pixels // config.scale**2)
        refusal = pixel_limit_message(image.width, image.height, config.scale, args.magnitude, sr.max_pixels)
        if refusal:
            raise ImageRejected(refusal)
        engine = load_engine(config)
    except (OSError, ImageRejected, EngineError) as exc:
        print(f"{args.input}: {exc}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    out = upscale(image, engine, args.magnitude)
    text = png_text(data) if data.startswith(b"\x89PNG\r\n\x1a\n") else None
    factor = config.scale**args.magnitude
    suffix = ".jpg" if args.out_format == "jpeg" else ".png"
    target = args.output or args.input.with_name(f"{args.input.stem}-x{factor}{suffix}")
    target.write_bytes(encode(out, args.out_format, args.quality, text))
    seconds = time.perf_counter() - began
    print(f"{target}: {out.width}x{out.height} ({engine.name}, {args.magnitude} pass(es), {seconds:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
