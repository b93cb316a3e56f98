"""An edge model folder: where its graphs, tokenizer and scheduler config are, and what the graphs take.

Layout (``python -m workers.onnx_export`` writes it; ``python -m
workers.edge.convert_rknn`` converts it)::

    edge.json                      manifest: graph inputs/outputs, VAE scaling, fixed size (RKNN)
    tokenizer/                     the model's own CLIP tokenizer files
    scheduler/scheduler_config.json
    text_encoder/model.onnx|rknn
    unet/model.onnx|rknn           (+ model.onnx.data: weights of graphs over 2 GB)
    vae_decoder/model.onnx|rknn

The original Dream Lab's flat layout (``text_encoder.rknn``, ``unet.rknn``, ``vae_decoder.rknn``
beside ``tokenizer/`` and ``scheduler/``, no manifest) is read too; its graphs
are taken to be the LCM SD1.5 ones (``DEFAULT_GRAPHS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "edge.json"
MANIFEST_FORMAT = "dreamlab-edge"
GRAPH_NAMES = ("text_encoder", "unet", "vae_decoder")
DEFAULT_VAE_SCALING = 0.18215
LATENT_CHANNELS = 4
VAE_SCALE = 8

# The LCM SD1.5 graphs as the original Dream Lab converted them, inputs in order (FACTS.md).
DEFAULT_GRAPHS: dict[str, list[dict[str, Any]]] = {
    "text_encoder": [{"name": "input_ids", "dtype": "int32", "shape": [1, 77]}],
    "unet": [
        {"name": "sample", "dtype": "float32", "shape": [1, LATENT_CHANNELS, "height", "width"]},
        {"name": "timestep", "dtype": "int64", "shape": [1]},
        {"name": "encoder_hidden_states", "dtype": "float32", "shape": [1, 77, 768]},
        {"name": "timestep_cond", "dtype": "float32", "shape": [1, 256]},
    ],
    "vae_decoder": [{"name": "latent_sample", "dtype": "float32", "shape": [1, LATENT_CHANNELS, "height", "width"]}],
}


class ModelFolderError(ValueError):
    """The folder is not a usable edge model; the message says what to do."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: str
    shape: tuple[int | str, ...]  # a str names a dimension fixed only at run time


@dataclass(frozen=True)
class EdgeModel:
    root: Path
    graph_paths: dict[str, Path]
    inputs: dict[str, tuple[InputSpec, ...]]
    vae_scaling_factor: float
    fixed_size: tuple[int, int] | None  # (width, height) a converted RKNN model was built for

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def scheduler_config(self) -> Path:
        return self.root / "scheduler" / "scheduler_config.json"

    def graph_bytes(self) -> int:
        """Bytes of the graph files (with ONNX external weights): what loading them costs in memory."""
        return sum(
            file.stat().st_size
            for path in self.graph_paths.values()
            for file in path.parent.iterdir()
            if file.name.startswith(path.name) or file.name.startswith(f"{path.stem}.onnx")
        )


def open_edge_model(root: Path, runtime: str) -> EdgeModel:
    """Read the folder for ``runtime`` (``onnx`` or ``rknn``), or raise ModelFolderError saying what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise ModelFolderError(f"model folder {root} does not exist")
    manifest = _read_manifest(root)
    paths = {name: _graph_path(root, name, runtime) for name in GRAPH_NAMES}
    for required in ("tokenizer", "scheduler/scheduler_config.json"):
        if not (root / required).exists():
            raise ModelFolderError(
                f"{root} has no {required}; copy it from the diffusers folder the graphs were exported from"
            )
    graphs = manifest.get("graphs") or {name: {"inputs": specs} for name, specs in DEFAULT_GRAPHS.items()}
    inputs = {
        name: tuple(InputSpec(s["name"], s["dtype"], tuple(s["shape"])) for s in graphs[name]["inputs"])
        for name in GRAPH_NAMES
    }
    size = manifest.get("size")
    return EdgeModel(
        root=root,
        graph_paths=paths,
        inputs=inputs,
        vae_scaling_factor=float(manifest.get("vae_scaling_factor", DEFAULT_VAE_SCALING)),
        fixed_size=(int(size[0]), int(size[1])) if size else None,
    )


def write_manifest(root: Path, manifest: dict[str, Any]) -> Path:
    path = Path(root) / MANIFEST
    path.write_text(json.dumps({"format": MANIFEST_FORMAT, "version": 1, **manifest}, indent=2) + "\n")
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """The folder's manifest; ModelFolderError when there is none."""
    manifest = _read_manifest(Path(root))
    if not manifest:
        raise ModelFolderError(f"{root} has no {MANIFEST}; export it with `python -m workers.onnx_export`")
    return manifest


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is not valid JSON ({exc}); export the folder again") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ModelFolderError(f"{path} is not a {MANIFEST_FORMAT} manifest; export the folder again")
    return manifest


def _graph_path(root: Path, name: str, runtime: str) -> Path:
    suffix = {"onnx": ".onnx", "rknn": ".rknn"}[runtime]
    candidates = [root / name / f"model{suffix}", root / f"{name}{suffix}"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    hint = (
        "export it with `python -m workers.onnx_export --model DIFFUSERS_DIR --out DIR`"
        if runtime == "onnx"
        else "convert it with `python -m workers.edge.convert_rknn` (README: Converting to RKNN)"
    )
    raise ModelFolderError(f"{root} has no {name} graph ({' or '.join(str(c) for c in candidates)}); {hint}")
