"""Edge-backend fixtures: tiny models exported to ONNX and converted for the RKNN stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MODEL_ROOT

RKNN_SIZE = (64, 64)


@pytest.fixture(scope="session")
def tiny_lcm_model() -> Path:
    """The tiny SD1.5 with an LCM-distilled UNet's guidance-embedding input."""
    from workers.tiny_models import build_sd15

    return build_sd15(MODEL_ROOT / "tiny-lcm-sd15", size="tiny", lcm=True)


@pytest.fixture(scope="session")
def edge_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edge-models")


@pytest.fixture(scope="session")
def tiny_onnx(edge_root, tiny_model) -> Path:
    from workers.onnx_export import export

    return export(tiny_model, edge_root / "tiny-onnx")


@pytest.fixture(scope="session")
def tiny_lcm_onnx(edge_root, tiny_lcm_model) -> Path:
    from workers.onnx_export import export

    return export(tiny_lcm_model, edge_root / "tiny-lcm-onnx")


@pytest.fixture(scope="session")
def tiny_lcm_rknn(edge_root, tiny_lcm_onnx) -> Path:
    """tiny-lcm-onnx converted for the stand-in at 64x64."""
    from workers.edge.convert_rknn import convert

    return convert(tiny_lcm_onnx, edge_root / "tiny-lcm-rknn", *RKNN_SIZE, target="rk3588", standin=True)
