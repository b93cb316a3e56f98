"""The Sub-Pixel CNN's layout as plain numbers, for code that must not import torch (the ONNX engine,
tiling, weight checks): SR workers on ONNX Runtime run without torch."""

SCALE = 3
# Parameter names, in graph order, as in the PyTorch tutorial the zoo model was exported from.
LAYERS = ("conv1", "conv2", "conv3", "conv4")
SHAPES = {
    "conv1": (64, 1, 5, 5),
    "conv2": (64, 64, 3, 3),
    "conv3": (32, 64, 3, 3),
    "conv4": (SCALE * SCALE, 32, 3, 3),
}
RECEPTIVE_RADIUS = 2 + 1 + 1 + 1  # input pixels each side that one output pixel depends on
