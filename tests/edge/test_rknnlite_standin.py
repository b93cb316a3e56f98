"""The x86 RKNNLite stand-in refuses what the real runtime refuses, and never raises."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from workers.edge.rknnlite_standin import RKNNLite

SHAPE = [1, 3, 2, 4]  # NCHW, as the ONNX graph (and rknn-toolkit2's conversion) has it
SCALE = np.array([1.0, 10.0, 100.0], dtype=np.float32).reshape(1, 3, 1, 1)


@pytest.fixture
def model(tmp_path):
    """A channel-sensitive graph (y = x * per-channel scale) plus an int64 input, converted for the stand-in."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "scale"], ["y"]),
            helper.make_node("Cast", ["t"], ["t_out"], to=TensorProto.FLOAT),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"]),
            helper.make_tensor_value_info("t", TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"]),
            helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor("scale", TensorProto.FLOAT, [1, 3, 1, 1], SCALE.reshape(-1).tolist())],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "model.onnx")
    inputs = [{"name": "x", "dtype": "float32", "shape": SHAPE}, {"name": "t", "dtype": "int64", "shape": [1]}]
    path = tmp_path / "model.rknn"
    path.write_text(json.dumps({"format": "dreamlab-rknn-standin", "onnx": "model.onnx", "inputs": inputs}))
    return path


@pytest.fixture
def ready(model):
    runtime = RKNNLite(verbose=False)
    assert runtime.load_rknn(str(model)) == 0
    assert runtime.init_runtime(core_mask=RKNNLite.NPU_CORE_0) == 0
    yield runtime
    runtime.release()


def nchw() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)


def test_core_mask_constants_are_the_real_ones():
    assert (RKNNLite.NPU_CORE_AUTO, RKNNLite.NPU_CORE_0, RKNNLite.NPU_CORE_1, RKNNLite.NPU_CORE_2) == (0, 1, 2, 4)
    assert (RKNNLite.NPU_CORE_0_1, RKNNLite.NPU_CORE_0_1_2) == (3, 7)


def test_load_rknn_returns_minus_one_and_never_raises(tmp_path, model):
    runtime = RKNNLite()
    assert runtime.load_rknn(str(tmp_path / "missing.rknn")) == -1
    real_binary = tmp_path / "real.rknn"
    real_binary.write_bytes(b"RKNN\x00\x01\x02\xff" * 64)
    assert runtime.load_rknn(str(real_binary)) == -1
    other_json = tmp_path / "other.rknn"
    other_json.write_text(json.dumps({"format": "something-else"}))
    assert runtime.load_rknn(str(other_json)) == -1
    dangling = tmp_path / "dangling.rknn"
    dangling.write_text(json.dumps({"format": "dreamlab-rknn-standin", "onnx": "nope.onnx", "inputs": []}))
    assert runtime.load_rknn(str(dangling)) == -1
    assert runtime.load_rknn(str(model)) == 0


def test_init_runtime_needs_a_loaded_model_and_a_valid_core_mask(model, tmp_path):
    runtime = RKNNLite()
    assert runtime.init_runtime() == -1
    assert runtime.load_rknn(str(model)) == 0
    assert runtime.init_runtime(core_mask=5) == -1
    for mask in (0, 1, 2, 4, 3, 7):
        assert runtime.init_runtime(core_mask=mask) == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a graph")
    (broken / "model.rknn").write_text(model.read_text())
    assert runtime.load_rknn(str(broken / "model.rknn")) == 0
    assert runtime.init_runtime() == -1


def test_inference_before_init_returns_none(model):
    runtime = RKNNLite()
    assert runtime.inference(inputs=[nchw(), np.array([1])], data_format="nchw") is None
    assert runtime.load_rknn(str(model)) == 0
    assert runtime.inference(inputs=[nchw(), np.array([1])], data_format="nchw") is None


def test_outputs_are_float32_in_the_onnx_layout(ready):
    outputs = ready.inference(inputs=[nchw(), np.array([5], dtype=np.int64)], data_format=["nchw", "nhwc"])
    assert [o.dtype for o in outputs] == [np.float32, np.float32]
    assert outputs[0].shape == tuple(SHAPE)
    np.testing.assert_array_equal(outputs[0], nchw() * SCALE)
    assert outputs[1].tolist() == [5.0]


def test_four_d_inputs_default_to_nhwc(ready):
    t = np.array([0], dtype=np.int64)
    nhwc = np.ascontiguousarray(nchw().transpose(0, 2, 3, 1))
    expected = nchw() * SCALE
    np.testing.assert_array_equal(ready.inference(inputs=[nhwc, t])[0], expected)
    np.testing.assert_array_equal(ready.inference(inputs=[nhwc, t], data_format="nhwc")[0], expected)
    # An NCHW array without data_format has the right byte size: it is reinterpreted, not refused.
    misread = ready.inference(inputs=[nchw(), t])
    assert misread is not None and not np.array_equal(misread[0], expected)


@pytest.mark.parametrize(
    ("inputs", "data_format"),
    [
        ([nchw().astype(np.float64), np.array([1])], "nchw"),  # float64 is not a runtime type
        ([nchw().astype(np.complex64), np.array([1])], "nchw"),
        ([nchw()[:, :, :1], np.array([1])], "nchw"),  # byte size of another resolution
        ([np.zeros((1, 3, 4, 4), np.float32), np.array([1])], "nchw"),
        ([nchw(), np.array([1, 2])], "nchw"),
        ([nchw()], "nchw"),  # too few inputs
        ([nchw(), np.array([1]), np.array([1])], "nchw"),
        ([nchw().tolist(), np.array([1])], "nchw"),  # not an ndarray
        ("not a list", "nchw"),
        (None, "nchw"),
        ([nchw(), np.array([1])], "NCWH"),
        ([nchw(), np.array([1])], ["nchw"]),  # one format per input
    ],
)
def test_bad_input_returns_none_and_never_raises(ready, inputs, data_format):
    assert ready.inference(inputs=inputs, data_format=data_format) is None
    assert ready.inference(inputs=[nchw(), np.array([1])], data_format="nchw") is not None, "still usable"


def test_other_integer_and_half_inputs_are_converted(ready):
    outputs = ready.inference(inputs=[nchw().astype(np.float16), np.array([3], dtype=np.int32)], data_format="nchw")
    np.testing.assert_array_equal(outputs[0], nchw() * SCALE)
    assert outputs[1].tolist() == [3.0]


def test_release_frees_the_context(ready):
    ready.release()
    assert ready.inference(inputs=[nchw(), np.array([1])], data_format="nchw") is None
