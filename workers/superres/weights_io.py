"""Read and write the Sub-Pixel CNN's weights: safetensors (ours) and ONNX (ours or the model zoo's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workers.superres.layout import LAYERS, SHAPES


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """``{"conv1.weight": ..., "conv1.bias": ..., ...}`` from a .safetensors or .onnx file."""
    path = Path(path)
    if path.suffix == ".onnx":
        weights = _from_onnx(path)
    else:
        from safetensors.numpy import load_file

        weights = load_file(str(path))
    _check(weights, path)
    return weights


def _from_onnx(path: Path) -> dict[str, np.ndarray]:
    """The four Conv nodes' weight and bias initializers, in graph order (the zoo's names do not matter)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # the exporter shares equal tensors through Identity nodes
        if node.op_type == "Identity" and node.input[0] in initializers:
            initializers[node.output[0]] = initializers[node.input[0]]
    convs = [node for node in graph.node if node.op_type == "Conv"]
    if len(convs) != len(LAYERS):
        raise ValueError(f"{path}: expected {len(LAYERS)} Conv nodes (the Sub-Pixel CNN), found {len(convs)}")
    weights = {}
    for layer, node in zip(LAYERS, convs, strict=True):
        if len(node.input) != 3 or any(name not in initializers for name in node.input[1:]):
            raise ValueError(f"{path}: Conv node {node.name!r} has no constant weight and bias")
        weights[f"{layer}.weight"] = initializers[node.input[1]]
        weights[f"{layer}.bias"] = initializers[node.input[2]]
    return weights


def onnx_shapes(path: Path) -> tuple[list, list]:
    """The graph's input and output dimensions: ints where fixed, names where dynamic."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"{path}: expected one input and one output, found {len(inputs)} and {len(graph.output)}")
    return _dims(inputs[0]), _dims(graph.output[0])


def _dims(value) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


def _check(weights: dict[str, np.ndarray], path: Path) -> None:
    for layer, shape in SHAPES.items():
        for suffix, expected in (("weight", shape), ("bias", shape[:1])):
            tensor = weights.get(f"{layer}.{suffix}")
            if tensor is None or tuple(tensor.shape) != expected:
                found = None if tensor is None else tuple(tensor.shape)
                raise ValueError(
                    f"{path}: {layer}.{suffix} should have shape {expected}, found {found}; "
                    "this is not a Sub-Pixel CNN x3 model"
                )
