"""The numpy port of torch's seeded CPU randn gives torch's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.edge.torch_noise import TorchGenerator

# Latent shapes of real sizes (multiples of 16 values, and not), and tiny ones on torch's serial path.
SHAPES = [(1, 4, 8, 8), (1, 4, 9, 12), (1, 4, 9, 9), (1, 4, 32, 32), (1, 4, 1, 1), (1, 4, 1, 2), (1, 4, 1, 3)]


@pytest.mark.parametrize("seed", [0, 1, 42, 123456789, 2**32 - 1])
def test_a_sequence_of_draws_matches_torch(seed):
    torch_generator = torch.Generator(device="cpu").manual_seed(seed)
    ours = TorchGenerator(seed)
    for shape in SHAPES + SHAPES[::-1]:
        expected = torch.randn(shape, generator=torch_generator, dtype=torch.float32).numpy()
        got = ours.randn(shape)
        assert got.dtype == np.float32 and got.shape == shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_seeds_differ_and_repeat():
    first, again, other = (TorchGenerator(s).randn((1, 4, 8, 8)) for s in (7, 7, 8))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_outside_32_bits_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be between 0 and"):
        TorchGenerator(seed)
