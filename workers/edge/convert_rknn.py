"""Convert an edge ONNX folder into an RKNN folder for one fixed resolution.

On an x86 host with rknn-toolkit2 installed (README: Converting to RKNN)::

    python -m workers.edge.convert_rknn --onnx ONNX_DIR --out RKNN_DIR --size 512x512 [--target rk3588]

``--standin`` writes the files the x86 ``RKNNLite`` stand-in runs instead
(workers/edge/rknnlite_standin.py): no toolkit needed; that is how the tests
and CI make RKNN folders.  Either way the output has ``text_encoder/``,
``unet/``, ``vae_decoder/`` with a ``model.rknn`` each, the tokenizer, the
scheduler config and an ``edge.json`` that records the fixed size.  A mode on
it must have that size as its ``default_size``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from workers.edge.model_folder import GRAPH_NAMES, VAE_SCALE, read_manifest, write_manifest
from workers.edge.rknnlite_standin import STANDIN_FORMAT

DEFAULT_TARGET = "rk3588"


def fixed_shapes(inputs: list[dict[str, Any]], width: int, height: int) -> list[list[int]]:
    """The inputs' shapes at batch 1 and ``width`` x ``height`` pixels: what ``input_size_list`` takes."""
    dims = {"batch": 1, "height": height // VAE_SCALE, "width": width // VAE_SCALE}
    return [[dims[d] if isinstance(d, str) else int(d) for d in spec["shape"]] for spec in inputs]


def convert(onnx_dir: Path, out: Path, width: int, height: int, target: str, standin: bool) -> Path:
    if width % VAE_SCALE or height % VAE_SCALE:
        raise SystemExit(f"--size {width}x{height}: width and height must be multiples of {VAE_SCALE}")
    onnx_dir, out = Path(onnx_dir), Path(out)
    manifest = read_manifest(onnx_dir)
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for name in GRAPH_NAMES:
        spec = manifest["graphs"][name]
        shapes = fixed_shapes(spec["inputs"], width, height)
        source, target_file = onnx_dir / name / "model.onnx", out / name / "model.rknn"
        target_file.parent.mkdir(exist_ok=True)
        convert_graph(source, target_file, spec["inputs"], shapes, target, standin)
        inputs = [{**i, "shape": shape} for i, shape in zip(spec["inputs"], shapes, strict=True)]
        graphs[name] = {"inputs": inputs, "outputs": spec["outputs"]}
    for folder in ("tokenizer", "scheduler"):
        shutil.rmtree(out / folder, ignore_errors=True)
        shutil.copytree(onnx_dir / folder, out / folder)
    write_manifest(
        out,
        {
            "runtime": "rknn",
            "source": str(onnx_dir.resolve()),
            "target_platform": target,
            "size": [width, height],
            "vae_scaling_factor": manifest["vae_scaling_factor"],
            "graphs": graphs,
        },
    )
    return out


def convert_graph(
    source: Path, target_file: Path, inputs: list[dict[str, Any]], shapes: list[list[int]], target: str, standin: bool
) -> None:
    """One ONNX graph to one ``.rknn`` with the inputs fixed to ``shapes``: by rknn-toolkit2, or for the stand-in."""
    if standin:
        _write_standin(source, target_file, inputs, shapes, target)
    else:
        _convert_with_toolkit(source, target_file, inputs, shapes, target)


def _convert_with_toolkit(
    source: Path, target_file: Path, inputs: list[dict[str, Any]], shapes: list[list[int]], platform: str
) -> None:
    try:
        from rknn.api import RKNN
    except ImportError:
        raise SystemExit(
            "rknn-toolkit2 is not installed: convert on an x86 Linux host with it (README: Converting to RKNN), "
            "or pass --standin for the x86 stand-in's files"
        ) from None
    rknn = RKNN(verbose=False)
    try:
        steps = (
            ("config", lambda: rknn.config(target_platform=platform)),
            (
                "load_onnx",
                lambda: rknn.load_onnx(model=str(source), inputs=[i["name"] for i in inputs], input_size_list=shapes),
            ),
            ("build", lambda: rknn.build(do_quantization=False)),
            ("export_rknn", lambda: rknn.export_rknn(str(target_file))),
        )
        for step, call in steps:
            code = call()
            if code not in (0, None):
                raise SystemExit(f"rknn-toolkit2 {step} of {source} returned {code}; see its log above")
    finally:
        rknn.release()


def _write_standin(
    source: Path, target_file: Path, inputs: list[dict[str, Any]], shapes: list[list[int]], platform: str
) -> None:
    """A stand-in model: the ONNX graph (and its external data) beside it, hard-linked when possible,
    and a JSON ``.rknn`` naming it."""
    folder = target_file.parent
    beside = [f for f in source.parent.iterdir() if f.name.startswith(source.name)]
    for file in beside if source.parent.resolve() != folder.resolve() else []:
        copy = folder / file.name
        copy.unlink(missing_ok=True)
        try:
            os.link(file, copy)
        except OSError:
            shutil.copy2(file, copy)
    model = {
        "format": STANDIN_FORMAT,
        "onnx": source.name,
        "target_platform": platform,
        "inputs": [{"name": i["name"], "dtype": i["dtype"], "shape": s} for i, s in zip(inputs, shapes, strict=True)],
    }
    target_file.write_text(json.dumps(model, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, required=True, help="a folder from python -m workers.onnx_export")
    parser.add_argument("--out", type=Path, required=True, help="the RKNN folder to write")
    parser.add_argument("--size", required=True, help="the one resolution the RKNN graphs will run, WIDTHxHEIGHT")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="rknn-toolkit2 target_platform")
    parser.add_argument("--standin", action="store_true", help="write the x86 stand-in's files; no toolkit needed")
    args = parser.parse_args()
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--size {args.size!r} must look like 512x512") from None
    print(json.dumps({"out": str(convert(args.onnx, args.out, width, height, args.target, args.standin))}))


if __name__ == "__main__":
    main()
