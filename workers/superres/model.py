"""The Sub-Pixel CNN of Shi et al. 2016, in the layout of the ONNX model zoo's super-resolution-10.

Four convolutions (1->64 5x5, 64->64 3x3, 64->32 3x3, 32->9 3x3) with ReLU between,
then PixelShuffle(3): one Y-channel tile [N, 1, H, W] in [0, 1] becomes [N, 1, 3H, 3W].
"""

from __future__ import annotations

import torch
from torch import nn

from workers.superres.layout import LAYERS, SCALE


class SubPixelCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, SCALE * SCALE, 3, padding=1)
        self.relu = nn.ReLU()
        self.pixel_shuffle = nn.PixelShuffle(SCALE)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv1(y))
        y = self.relu(self.conv2(y))
        y = self.relu(self.conv3(y))
        return self.pixel_shuffle(self.conv4(y))

    def init_weights(self, seed: int) -> None:
        """Orthogonal init with the ReLU gain (as the tutorial), from a fixed seed."""
        generator = torch.Generator().manual_seed(seed)
        for name in LAYERS:
            conv = getattr(self, name)
            gain = 1.0 if name == "conv4" else nn.init.calculate_gain("relu")
            nn.init.orthogonal_(conv.weight, gain, generator=generator)
            nn.init.zeros_(conv.bias)
