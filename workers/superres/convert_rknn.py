"""Convert the Sub-Pixel CNN's ONNX graph into an ``.rknn`` for one fixed tile size.

On an x86 host with rknn-toolkit2 installed (README: Converting to RKNN)::

    python -m workers.superres.convert_rknn --onnx workers/superres/weights/subpixel-x3.onnx \\
        --out models/subpixel-x3.rknn [--tile 224] [--target rk3588]

``--standin`` writes what the x86 ``RKNNLite`` stand-in runs (a JSON ``.rknn`` with the
ONNX graph beside it), as ``python -m workers.edge.convert_rknn --standin`` does for the
LCM graphs; the tests make their SR ``.rknn`` files that way.  Point SR_MODEL_PATH at the
result with SR_INPUT_SIZE set to the tile (SR_ENGINE=auto picks the RKNN engine by suffix).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workers.edge.convert_rknn import DEFAULT_TARGET, convert_graph
from workers.superres.weights_io import onnx_shapes


def convert(onnx_path: Path, out: Path, tile: int, target: str, standin: bool) -> Path:
    """Write ``out`` (an .rknn) from ``onnx_path`` with its input fixed to [1, 1, tile, tile]."""
    import onnx

    onnx_path, out = Path(onnx_path), Path(out)
    if out.suffix != ".rknn":
        raise SystemExit(f"--out {out}: the file name must end in .rknn (SR_ENGINE=auto picks the engine by it)")
    input_shape, _ = onnx_shapes(onnx_path)
    fixed = [d for d in input_shape[2:] if isinstance(d, int)]
    if any(d != tile for d in fixed):
        raise SystemExit(f"{onnx_path} has fixed {fixed[0]}-pixel tiles; pass --tile {fixed[0]}")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    [name] = [value.name for value in graph.input if value.name not in initializers]
    out.parent.mkdir(parents=True, exist_ok=True)
    convert_graph(onnx_path, out, [{"name": name, "dtype": "float32"}], [[1, 1, tile, tile]], target, standin)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, required=True, help="the Sub-Pixel CNN's ONNX graph")
    parser.add_argument("--out", type=Path, required=True, help="the .rknn file to write")
    parser.add_argument("--tile", type=int, default=224, help="input tile side in pixels (SR_INPUT_SIZE)")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="rknn-toolkit2 target_platform")
    parser.add_argument("--standin", action="store_true", help="write the x86 stand-in's files; no toolkit needed")
    args = parser.parse_args()
    print(json.dumps({"out": str(convert(args.onnx, args.out, args.tile, args.target, args.standin))}))


if __name__ == "__main__":
    main()
