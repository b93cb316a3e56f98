"""The numpy LCM pipeline: the same image as the torch backend, on ONNX Runtime and on the RKNN stand-in."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from workers.edge.backends import OnnxBackend, RknnBackend
from workers.edge.model_folder import ModelFolderError, open_edge_model
from workers.edge.pipeline import SizeError
from workers.edge.rknn_graph import RknnError
from workers.errors import CapacityError, JobError


def params(**overrides) -> GenerateParams:
    values = {
        "prompt": "a fox in the snow",
        "negative_prompt": "",
        "width": 64,
        "height": 64,
        "steps": 4,
        "guidance": 1.0,
        "seed": 42,
        **overrides,
    }
    return GenerateParams(**values)


def job(model, backend: str, p: GenerateParams) -> GenerateJob:
    return GenerateJob(job_id="job-1", mode=ResolvedMode("m", str(model), "lcm", backend), params=p)


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


@pytest.fixture(scope="module")
def torch_backend():
    from workers.torch_backend import TorchBackend

    return TorchBackend()


def assert_close_images(got, expected) -> None:
    """Within float rounding: a pixel may land on the next 8-bit level, no further."""
    difference = np.abs(pixels(got) - pixels(expected))
    assert got.size == expected.size
    assert difference.max() <= 1 and difference.mean() < 0.05, (difference.max(), difference.mean())


@pytest.mark.parametrize(
    ("lcm", "overrides"),
    [
        (False, {}),
        (False, {"width": 72, "height": 96, "seed": 7}),
        (False, {"guidance": 3.0, "negative_prompt": "blurry"}),  # no embedding input: classifier-free guidance
        (True, {"guidance": 2.0}),  # LCM-distilled: w = guidance - 1 embedding
        (True, {"guidance": 8.0, "steps": 6, "width": 80, "height": 64, "seed": 2**32 - 1}),
    ],
)
def test_onnx_gives_the_torch_backends_image(request, torch_backend, lcm, overrides):
    source = request.getfixturevalue("tiny_lcm_model" if lcm else "tiny_model")
    exported = request.getfixturevalue("tiny_lcm_onnx" if lcm else "tiny_onnx")
    p = params(**overrides)
    expected = torch_backend.generate(job(source, "torch", p), lambda *_: None).image
    got = OnnxBackend().generate(job(exported, "onnx", p), lambda *_: None)
    assert got.sampler == "LCM"
    assert_close_images(got.image, expected)


def test_guidance_and_seed_change_the_image_and_a_seed_repeats_it(tiny_lcm_onnx):
    backend = OnnxBackend()

    def image(**overrides):
        return pixels(backend.generate(job(tiny_lcm_onnx, "onnx", params(**overrides)), lambda *_: None).image)

    base = image(guidance=2.0)
    assert np.array_equal(base, image(guidance=2.0))
    assert not np.array_equal(base, image(guidance=1.0))
    assert not np.array_equal(base, image(guidance=2.0, seed=43))


def test_progress_is_reported_once_per_step(tiny_lcm_onnx):
    steps = []
    OnnxBackend().generate(job(tiny_lcm_onnx, "onnx", params(steps=5)), lambda step, total: steps.append((step, total)))
    assert steps == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_rknn_on_the_stand_in_gives_the_onnx_image(tiny_lcm_onnx, tiny_lcm_rknn):
    p = params(guidance=2.0, seed=11)
    onnx = OnnxBackend().generate(job(tiny_lcm_onnx, "onnx", p), lambda *_: None).image
    rknn_backend = RknnBackend(num_workers=1, use_context_cfgs=True)
    steps = []
    rknn = rknn_backend.generate(job(tiny_lcm_rknn, "rknn", p), lambda step, total: steps.append(step))
    assert steps == [1, 2, 3, 4]
    assert_close_images(rknn.image, onnx)
    assert np.abs(pixels(rknn.image) - pixels(onnx)).max() <= 1
    rknn_backend.close()


def test_rknn_refuses_a_size_other_than_the_converted_one(tiny_lcm_rknn):
    with pytest.raises(SizeError, match="converted for 64x64 only, not 64x72"):
        RknnBackend(1, True).generate(job(tiny_lcm_rknn, "rknn", params(height=72)), lambda *_: None)


def flat_seed_layout(rknn_folder, out):
    """The original Dream Lab's layout: text_encoder.rknn, unet.rknn, vae_decoder.rknn at the top, no manifest."""
    out.mkdir()
    for name in ("text_encoder", "unet", "vae_decoder"):
        shutil.copy2(rknn_folder / name / "model.onnx", out / f"{name}.onnx")
        model = json.loads((rknn_folder / name / "model.rknn").read_text())
        (out / f"{name}.rknn").write_text(json.dumps({**model, "onnx": f"{name}.onnx"}))
    for folder in ("tokenizer", "scheduler"):
        shutil.copytree(rknn_folder / folder, out / folder)
    return out


def test_the_seeds_flat_layout_runs_and_a_wrong_size_fails_in_inference(tmp_path, tiny_lcm_rknn):
    flat = flat_seed_layout(tiny_lcm_rknn, tmp_path / "flat")
    model = open_edge_model(flat, "rknn")
    assert model.graph_paths["unet"] == flat / "unet.rknn" and model.fixed_size is None
    backend = RknnBackend(1, True)
    p = params(guidance=2.0, seed=11)
    nested = RknnBackend(1, True).generate(job(tiny_lcm_rknn, "rknn", p), lambda *_: None).image
    assert np.array_equal(pixels(backend.generate(job(flat, "rknn", p), lambda *_: None).image), pixels(nested))
    # Nothing records the size the flat graphs were converted for: the runtime refuses the inputs.
    with pytest.raises(RknnError, match=r"RKNN graph 'unet' .*inference returned None"):
        backend.generate(job(flat, "rknn", params(width=72, height=72)), lambda *_: None)
    assert backend.generate(job(flat, "rknn", p), lambda *_: None).image.size == (64, 64)


def test_folder_errors_say_what_to_do(tmp_path, tiny_lcm_onnx):
    with pytest.raises(ModelFolderError, match="does not exist"):
        open_edge_model(tmp_path / "missing", "onnx")
    with pytest.raises(ModelFolderError, match="python -m workers.onnx_export"):
        open_edge_model(tmp_path, "onnx")
    with pytest.raises(ModelFolderError, match="python -m workers.edge.convert_rknn"):
        open_edge_model(tiny_lcm_onnx, "rknn")
    copy = shutil.copytree(tiny_lcm_onnx, tmp_path / "copy")
    shutil.rmtree(copy / "tokenizer")
    with pytest.raises(ModelFolderError, match="no tokenizer; copy it from the diffusers folder"):
        open_edge_model(copy, "onnx")


def test_a_mode_with_another_scheduler_is_refused(tiny_lcm_onnx):
    bad = GenerateJob("job-2", ResolvedMode("m", str(tiny_lcm_onnx), "euler", "onnx"), params())
    with pytest.raises(JobError, match="set `scheduler: lcm`"):
        OnnxBackend().generate(bad, lambda *_: None)


def test_a_switch_on_the_rknn_backend_loads_every_context(tiny_lcm_rknn):
    backend = RknnBackend(num_workers=3, use_context_cfgs=True)
    backend.prepare(ResolvedMode("npu", str(tiny_lcm_rknn), "lcm", "rknn"), "switch-job")
    loaded = backend.memory_report()["models"]
    assert [(m["context"], m["core_mask"], m["mode"]) for m in loaded] == [(0, 1, "npu"), (1, 2, "npu"), (2, 4, "npu")]
    backend.close()


def test_edge_backends_refuse_a_model_that_does_not_fit_and_keep_the_old_one(tiny_lcm_rknn, tiny_lcm_onnx, monkeypatch):
    graphs = open_edge_model(tiny_lcm_rknn, "rknn").graph_bytes()
    monkeypatch.setenv("MEMORY_LIMIT_MB", str(graphs * 2 // 2**20 + 1))  # room for two copies, not three
    rknn = RknnBackend(num_workers=3, use_context_cfgs=True)
    rknn.generate(job(tiny_lcm_rknn, "rknn", params()), lambda *_: None)  # one context: fits
    with pytest.raises(CapacityError, match=r"mode 'rknn-mode' needs \d+ MiB for 2 copies of its graphs"):
        rknn.prepare(ResolvedMode("rknn-mode", str(tiny_lcm_rknn), "lcm", "rknn"), "switch-job")
    assert [m["context"] for m in rknn.memory_report()["models"]] == [0], "the loaded context keeps serving"
    rknn.close()
    monkeypatch.setenv("MEMORY_LIMIT_MB", "0")
    with pytest.raises(CapacityError, match="MEMORY_LIMIT_MB"):
        OnnxBackend().prepare(ResolvedMode("cpu", str(tiny_lcm_onnx), "lcm", "onnx"), "job")
