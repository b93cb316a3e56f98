"""Super-resolution engines and the tiling pipeline, on models with seeded random weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from config import SuperResSettings
from tasks.superres_context import engine_config
from tests.processes import ROOT
from tests.sr_helpers import picture, random_model
from workers.superres.engine import EngineConfig, EngineError, load_engine
from workers.superres.model import SubPixelCNN
from workers.superres.pipeline import upscale, upscale_once
from workers.superres.tiling import CONTEXT, upscale_plane
from workers.superres.train import export_onnx
from workers.superres.weights_io import read_weights


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> tuple[Path, Path]:
    return random_model(tmp_path_factory.mktemp("sr-model"))


def engine(path: Path, name: str = "auto", tile: int = 224):
    return load_engine(EngineConfig(name, path, tile, tile * 3, threads=1))


def whole_plane(path: Path, plane: np.ndarray) -> np.ndarray:
    """The model run once on the whole (context-padded) plane: what tiling must reproduce."""
    model = SubPixelCNN()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in read_weights(path).items()})
    padded = np.pad(plane, CONTEXT, mode="symmetric")
    with torch.inference_mode():
        out = model(torch.from_numpy(padded)[None, None])[0, 0].numpy()
    crop = CONTEXT * 3
    return np.clip(out[crop:-crop, crop:-crop], 0, 1)


def test_torch_and_onnx_runtime_agree_on_both_weight_files(model_files):
    safetensors_path, onnx_path = model_files
    tiles = np.random.default_rng(0).random((3, 1, 224, 224), dtype=np.float32)
    reference = engine(safetensors_path).run(tiles)
    assert reference.shape == (3, 1, 672, 672) and reference.std() > 0.01
    for path, name in ((onnx_path, "auto"), (onnx_path, "torch")):
        got = engine(path, name)
        assert got.name == ("onnx" if name == "auto" else "torch")
        np.testing.assert_allclose(got.run(tiles), reference, atol=1e-4)


def test_zoo_layout_with_a_fixed_batch_of_one(model_files, tmp_path):
    model = SubPixelCNN()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in read_weights(model_files[0]).items()})
    path = tmp_path / "super-resolution-10.onnx"
    export_onnx(model, path, dynamic_batch=False)
    graph = onnx.load(str(path)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 1, 224, 224]
    fixed = engine(path)
    assert fixed.max_batch == 1
    plane = np.random.default_rng(1).random((250, 230), dtype=np.float32)
    np.testing.assert_allclose(upscale_plane(plane, fixed), whole_plane(model_files[0], plane), atol=1e-5)


SHIPPED = ROOT / "workers" / "superres" / "weights" / "subpixel-x3.safetensors"


def zoo_like_onnx(weights: Path, path: Path) -> Path:
    """``weights`` in the layout of the model zoo's super-resolution-10.onnx: opset 10, the Conv weights and
    biases listed as graph inputs (with initializers, so a runtime may override them), numbered rather than
    named ("1" ... "8"), and a batch fixed to 1: input ``input`` [1, 1, 224, 224] -> ``output`` [1, 1, 672, 672]."""
    model = SubPixelCNN()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in read_weights(weights).items()})
    torch.onnx.export(
        model.eval(),
        torch.zeros(1, 1, 224, 224),
        str(path),
        input_names=["input"],
        output_names=["output"],
        opset_version=10,
        keep_initializers_as_inputs=True,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    graph = proto.graph
    numbers = {init.name: str(i) for i, init in enumerate(graph.initializer, start=1)}
    for tensor in graph.initializer:
        tensor.name = numbers[tensor.name]
    for value in graph.input:
        value.name = numbers.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [numbers.get(name, name) for name in node.input]
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def test_a_zoo_like_onnx_file_at_sr_model_path_gives_the_shipped_pixels(tmp_path, monkeypatch):
    path = zoo_like_onnx(SHIPPED, tmp_path / "super-resolution-10.onnx")
    graph = onnx.load(str(path)).graph
    assert [op.version for op in onnx.load(str(path)).opset_import if op.domain in ("", "ai.onnx")] == [10]
    weight_names = [str(i) for i in range(1, 9)]
    assert [value.name for value in graph.input] == ["input", *weight_names]
    assert sorted(init.name for init in graph.initializer) == sorted(weight_names)
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 1, 224, 224]
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [1, 1, 672, 672]

    shipped = read_weights(SHIPPED)
    read = read_weights(path)
    assert read.keys() == shipped.keys()
    for name, tensor in shipped.items():
        np.testing.assert_array_equal(read[name], tensor, err_msg=name)

    reference = engine(SHIPPED, "torch")  # the shipped weights through torch
    plane = np.random.default_rng(4).random((250, 230), dtype=np.float32)  # 2 x 2 tiles
    expected_plane = upscale_plane(plane, reference)
    image = picture(260, 200, "RGBA")
    expected_image = np.asarray(upscale_once(image, reference), dtype=np.int16)
    monkeypatch.setenv("SR_MODEL_PATH", str(path))
    for name, max_batch in (("auto", 1), ("onnx", 1), ("torch", 8)):
        monkeypatch.setenv("SR_ENGINE", name)
        config = replace(engine_config(SuperResSettings.from_env()), threads=1)
        loaded = load_engine(config)
        assert loaded.name == ("onnx" if name == "auto" else name) and loaded.max_batch == max_batch
        np.testing.assert_allclose(upscale_plane(plane, loaded), expected_plane, atol=1e-5, err_msg=name)
        got_image = np.asarray(upscale_once(image, loaded), dtype=np.int16)
        assert np.abs(got_image - expected_image).max() <= 1, name  # 8-bit rounding of equal floats


@pytest.mark.parametrize(("tile", "shape"), [(112, (250, 230)), (64, (70, 200))])
def test_a_non_default_tile_size_on_the_onnx_and_torch_engines(tmp_path, monkeypatch, tile, shape):
    """SR_INPUT_SIZE / SR_OUTPUT_SIZE other than 224 / 672: an ONNX model exported for that tile, and the torch
    engine (which takes any tile) on both weight files, give the same pixels as the model run on the whole plane."""
    model = SubPixelCNN()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in read_weights(SHIPPED).items()})
    path = tmp_path / f"subpixel-x3-{tile}.onnx"
    export_onnx(model, path, tile=tile)
    with pytest.raises(EngineError, match=f"set SR_INPUT_SIZE={tile}"):
        load_engine(EngineConfig("onnx", path, 224, 672))

    plane = np.random.default_rng(5).random(shape, dtype=np.float32)  # several tiles of this size
    expected = whole_plane(SHIPPED, plane)
    image = picture(shape[1], shape[0], "RGBA")
    default_tiles = np.asarray(upscale_once(image, engine(SHIPPED, "torch")), dtype=np.int16)
    monkeypatch.setenv("SR_INPUT_SIZE", str(tile))
    monkeypatch.setenv("SR_OUTPUT_SIZE", str(tile * 3))
    for name, model_path in (("onnx", path), ("torch", SHIPPED), ("torch", path)):
        monkeypatch.setenv("SR_ENGINE", name)
        monkeypatch.setenv("SR_MODEL_PATH", str(model_path))
        loaded = load_engine(replace(engine_config(SuperResSettings.from_env()), threads=1))
        assert (loaded.name, loaded.tile, loaded.scale) == (name, tile, 3)
        tiles = np.random.default_rng(6).random((2, 1, tile, tile), dtype=np.float32)
        assert loaded.run(tiles).shape == (2, 1, tile * 3, tile * 3)
        np.testing.assert_allclose(upscale_plane(plane, loaded), expected, atol=1e-5, err_msg=f"{name} {model_path}")
        got = np.asarray(upscale_once(image, loaded), dtype=np.int16)
        assert np.abs(got - default_tiles).max() <= 1, f"{name} {model_path}: differs from 224 px tiles"


@pytest.mark.parametrize("shape", [(300, 500), (224, 224), (214, 214), (215, 449), (5, 7), (1, 1), (40, 600)])
def test_tiles_blend_into_exactly_the_whole_image_result(model_files, shape):
    plane = np.random.default_rng(2).random(shape, dtype=np.float32)
    out = upscale_plane(plane, engine(model_files[1]))
    assert out.shape == (shape[0] * 3, shape[1] * 3)
    np.testing.assert_allclose(out, whole_plane(model_files[0], plane), atol=1e-5)


def test_overwriting_tiles_would_leave_seams_that_blending_removes(model_files):
    """The control: tiles pasted edge to edge differ from the whole-image result along their borders."""
    onnx_engine = engine(model_files[1])
    plane = np.random.default_rng(3).random((214, 430), dtype=np.float32)
    padded = np.pad(plane, CONTEXT, mode="symmetric")  # 224 x 440: two tiles side by side, overlapping
    left, right = onnx_engine.run(np.stack([padded[None, :, :224], padded[None, :, -224:]]))[:, 0]
    pasted = np.concatenate([left, right[:, (224 * 2 - 440) * 3 :]], axis=1)[15:-15, 15:-15]
    whole = whole_plane(model_files[0], plane)
    assert np.abs(np.clip(pasted, 0, 1) - whole).max() > 0.01
    np.testing.assert_allclose(upscale_plane(plane, onnx_engine), whole, atol=1e-5)


def test_colour_recipe_model_on_y_bicubic_on_chroma(model_files):
    onnx_engine = engine(model_files[1])
    image = picture(40, 30)
    out = upscale_once(image, onnx_engine)
    assert out.mode == "RGB" and out.size == (120, 90)
    y, cb, cr = image.convert("YCbCr").split()
    model_y = upscale_plane(np.asarray(y, np.float32) / 255, onnx_engine)
    expected = Image.merge(
        "YCbCr",
        (
            Image.fromarray(np.round(model_y * 255).astype(np.uint8)),
            cb.resize((120, 90), Image.Resampling.BICUBIC),
            cr.resize((120, 90), Image.Resampling.BICUBIC),
        ),
    ).convert("RGB")
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert not np.array_equal(np.asarray(out), np.asarray(image.resize((120, 90), Image.Resampling.BICUBIC)))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_modes_and_alpha_survive(model_files, mode):
    image = picture(20, 16, "RGBA" if "A" in mode else "RGB").convert(mode)
    out = upscale(image, engine(model_files[1]), 2)
    assert out.mode == mode and out.size == (180, 144)
    if "A" in mode:
        alpha = np.asarray(out.getchannel("A"))
        assert alpha[:, :80].max() == 0 and alpha[:, 100:].min() == 255  # transparent half stays transparent


def test_passes_are_reported(model_files):
    seen = []
    upscale(picture(8, 8), engine(model_files[1]), 3, on_pass=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_configuration_errors_say_what_to_set(model_files, tmp_path):
    safetensors_path, onnx_path = model_files
    with pytest.raises(EngineError, match="set SR_INPUT_SIZE=224"):
        load_engine(EngineConfig("onnx", onnx_path, 128, 384))
    with pytest.raises(EngineError, match="x3"):
        load_engine(EngineConfig("torch", safetensors_path, 224, 448))
    with pytest.raises(EngineError, match="whole multiple"):
        load_engine(EngineConfig("torch", safetensors_path, 224, 700))
    with pytest.raises(EngineError, match="not a file"):
        load_engine(EngineConfig("auto", tmp_path / "missing.onnx", 224, 672))
    with pytest.raises(EngineError, match="SR_ENGINE='npu'"):
        load_engine(EngineConfig("npu", onnx_path, 224, 672))
    with pytest.raises(EngineError, match="needs an .onnx model"):
        load_engine(EngineConfig("onnx", safetensors_path, 224, 672))
    other = tmp_path / "other.safetensors"
    from safetensors.numpy import save_file

    save_file({"conv1.weight": np.zeros((8, 1, 3, 3), np.float32)}, str(other))
    with pytest.raises(EngineError, match="not a Sub-Pixel CNN"):
        load_engine(EngineConfig("torch", other, 224, 672))
