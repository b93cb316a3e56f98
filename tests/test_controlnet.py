"""ControlNet: tiny ControlNets of both families and layouts load offline, steer the image, and are refused
on the wrong family or backend with a message that says so."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import requests
import torch
import yaml
from PIL import Image

from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from tests.client import poll, result_bytes, submit
from tests.conftest import CONTROLNETS, MODEL_ROOT
from tests.processes import own_stack
from tests.test_inpainting import png64


def square(size: int = 64) -> Image.Image:
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[16:48, 16:48] = 255
    return Image.fromarray(pixels)


def job(model, controlnet=None, seed: int = 3, preprocessor: str = "none", scale: float = 1.0) -> GenerateJob:
    control = {}
    if controlnet is not None:
        control = {
            "control_image": "inputs/control.png",
            "controlnet": "c",
            "controlnet_path": str(controlnet),
            "controlnet_conditioning_scale": scale,
            "control_guidance_start": 0.0,
            "control_guidance_end": 1.0,
            "preprocessor": preprocessor,
        }
    return GenerateJob(
        job_id=f"control-{seed}",
        mode=ResolvedMode(name="m", model_path=str(model), scheduler="default", backend="torch"),
        params=GenerateParams(
            prompt="a fox", negative_prompt="", width=64, height=64, steps=4, guidance=5.0, seed=seed, **control
        ),
    )


@pytest.fixture(scope="module")
def backend():
    from workers.torch_backend import TorchBackend

    return TorchBackend()


def run(backend, generate_job, control: Image.Image | None = None) -> np.ndarray:
    kwargs = {} if control is None else {"control_image": control}
    return np.asarray(backend.generate(generate_job, lambda i, n: None, **kwargs).image).astype(int)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_folder_and_single_file_load_offline_to_the_same_weights(tiny_controlnets, family):
    from modes.controlnets import detect_controlnet
    from workers.controlnet_loader import load_controlnet

    folder = load_controlnet(tiny_controlnets[(family, "diffusers")], torch.float32, family).state_dict()
    single_path = tiny_controlnets[(family, "single")]
    single = load_controlnet(single_path, torch.float32, family).state_dict()
    assert detect_controlnet(single_path).layout == ("original" if family == "sd15" else "diffusers")
    assert folder.keys() == single.keys()
    assert all(torch.equal(folder[key], single[key]) for key in folder)


@pytest.mark.parametrize(("family", "fmt"), [("sd15", "single"), ("sdxl", "single"), ("sd15", "diffusers")])
def test_a_control_image_steers_the_image_reproducibly(backend, family_models, tiny_controlnets, family, fmt):
    model, controlnet = family_models[(family, "diffusers")], tiny_controlnets[(family, fmt)]
    plain = run(backend, job(model))
    controlled = run(backend, job(model, controlnet), square())
    assert np.abs(controlled - plain).mean() > 1
    assert np.array_equal(controlled, run(backend, job(model, controlnet), square()))
    assert not np.array_equal(controlled, run(backend, job(model, controlnet, seed=4), square()))
    assert not np.array_equal(controlled, run(backend, job(model, controlnet, scale=0.3), square()))
    held = backend.memory_report()["models"][0]
    assert [entry["path"] for entry in held["controlnets"]] == [str(controlnet)]
    assert backend.memory_report()["models_bytes"] == held["bytes"] + held["controlnets"][0]["bytes"]


def test_canny_finds_the_edges_of_a_square():
    from workers.canny import canny

    edges = np.asarray(canny(square()))[..., 0] > 0
    distance = np.minimum.reduce([abs(np.arange(64)[:, None] - 16), abs(np.arange(64)[:, None] - 47)])
    near_rows = np.broadcast_to(distance, (64, 64))
    near = np.minimum(near_rows, near_rows.T) <= 2
    assert edges.any() and not edges[~near].any()
    assert edges[16:48, 15:18].any(axis=1).all()  # the left side, unbroken
    assert not np.asarray(canny(Image.new("RGB", (64, 64), (90, 90, 90)))).any()


def test_the_canny_preprocessor_runs(backend, family_models, tiny_controlnets):
    from workers.canny import canny

    model, controlnet = family_models[("sd15", "diffusers")], tiny_controlnets[("sd15", "single")]
    edged = run(backend, job(model, controlnet, preprocessor="canny"), square())
    assert not np.array_equal(edged, run(backend, job(model, controlnet), square()))
    assert np.array_equal(edged, run(backend, job(model, controlnet), canny(square())))


def test_a_controlnet_of_another_family_is_refused_naming_both(backend, family_models, tiny_controlnets):
    from workers.errors import JobError

    model = family_models[("sd15", "diffusers")]
    with pytest.raises(JobError, match="an SDXL ControlNet on an SD1.5 model"):
        run(backend, job(model, tiny_controlnets[("sdxl", "single")]), square())
    with pytest.raises(JobError, match="not a ControlNet"):
        run(backend, job(model, family_models[("sd15", "single")]), square())
    assert np.array_equal(run(backend, job(model)), run(backend, job(model)))


def test_a_controlnet_of_another_family_is_refused_at_reload(tmp_path, family_models, tiny_controlnets):
    from modes import ModesError, load_modes

    path = tmp_path / "modes.yaml"
    path.write_text(
        f"model_root: {family_models[('sd15', 'diffusers')].parent}\n"
        "modes: {m: {model: tiny-sd15, controlnets: [tiny-controlnet-sdxl.safetensors]}}\n"
    )
    with pytest.raises(ModesError, match="mode 'm': controlnet 'tiny-controlnet-sdxl'.*SDXL ControlNet on an SD1.5"):
        load_modes(path)


@pytest.mark.parametrize(
    ("mode", "extra", "field", "message"),
    [
        ("edge", {}, "control_image", "onnx backend, which cannot run a ControlNet"),
        ("plain", {}, "controlnet", "has no ControlNet"),
        ("control", {"controlnet": "other"}, "controlnet", "'other' is not one of mode 'control'"),
        ("control", {"control_guidance_start": 0.6, "control_guidance_end": 0.5}, "control_guidance_start", "below"),
        ("control", {"preprocessor": "depth"}, "preprocessor", "'none' or 'canny'"),
        ("control", {"controlnet_conditioning_scale": 3}, "controlnet_conditioning_scale", "between 0.0 and 2.0"),
        ("control", {"init_image": "IMAGE"}, "control_image", "without init_image"),
    ],
)
def test_bad_control_fields_are_400_naming_the_field(tmp_path, mode, extra, field, message):
    from api.errors import ApiError
    from api.validation import parse_generation
    from modes import load_modes

    (tmp_path / "cn.safetensors").write_bytes(b"")
    path = tmp_path / "modes.yaml"
    path.write_text(
        "modes:\n"
        "  plain: {model: m}\n"
        "  edge: {model: m, backend: onnx, scheduler: lcm}\n"
        "  control: {model: m, controlnets: [cn.safetensors]}\n"
    )
    image = png64(square())
    body = {"prompt": "p", "mode": mode, "control_image": image, **extra}
    body = {key: image if value == "IMAGE" else value for key, value in body.items()}
    with pytest.raises(ApiError, match=message) as failure:
        parse_generation(body, load_modes(path))
    assert (failure.value.status, failure.value.field) == (400, field)
    with pytest.raises(ApiError, match="applies to ControlNet jobs only"):
        parse_generation({"prompt": "p", "mode": "control", "preprocessor": "canny"}, load_modes(path))


def test_controlnet_jobs_through_the_api(api_stack):
    base = api_stack.base
    modes = {mode["name"]: mode for mode in requests.get(f"{base}/api/modes", timeout=30).json()["modes"]}
    assert [(c["name"], c["scale"]) for c in modes["control"]["controlnets"]] == [
        ("edges", 0.8),
        ("tiny-controlnet-sd15", 1.0),
    ]
    images = {}
    for key, extra in (
        ("plain", {}),
        ("edges", {"control_image": png64(square())}),
        ("again", {"control_image": png64(square())}),
        ("canny", {"control_image": png64(square()), "preprocessor": "canny", "controlnet": "tiny-controlnet-sd15"}),
    ):
        record = poll(base, submit(base, mode="control", prompt="a fox", seed=9, **extra)["id"])
        assert record["status"] == "succeeded", record
        images[key] = np.asarray(Image.open(io.BytesIO(result_bytes(base, record["id"]))))
        if extra:
            assert record["params"]["controlnet"] == extra.get("controlnet", "edges")
    assert not np.array_equal(images["plain"], images["edges"])
    assert np.array_equal(images["edges"], images["again"])
    assert not np.array_equal(images["edges"], images["canny"])


def test_control_jobs_are_not_batched():
    """A batch is one pipeline call with one set of inputs: each control image runs on its own."""
    plain = job("m").params
    assert plain.batch_key() is not None
    assert job("m", "cn").params.batch_key() is None


def test_the_job_record_does_not_show_the_controlnet_path(api_stack):
    record = submit(api_stack.base, mode="control", prompt="a fox", seed=1, control_image=png64(square()))
    shown = requests.get(f"{api_stack.base}/api/jobs/{record['id']}", timeout=30).json()["params"]
    assert shown["controlnet"] == "edges" and "controlnet_path" not in shown
    assert poll(api_stack.base, record["id"])["status"] == "succeeded"


def test_the_message_names_the_controlnet_relative_to_its_root(tmp_path):
    from api.validation import parse_generation
    from modes import load_modes

    path = tmp_path / "modes.yaml"
    path.write_text("controlnet_root: cn\nmodes: {control: {model: m, controlnets: [canny/sd15.safetensors]}}\n")
    body = {"prompt": "p", "mode": "control", "control_image": png64(square())}
    _, params, _ = parse_generation(body, load_modes(path))
    assert (params.controlnet, params.controlnet_path) == ("sd15", "canny/sd15.safetensors")


def test_a_worker_finds_controlnets_under_its_own_controlnet_root(tmp_path, modes_file):
    """The API host's config puts the ControlNets in a folder this machine does not have; the worker holds
    one of them under its CONTROLNET_ROOT and runs jobs that name it, and fails those that name the other."""
    data = yaml.safe_load(modes_file.read_text())
    data["controlnet_root"] = str(tmp_path / "api-host-controlnets")  # not on this machine
    api_modes = tmp_path / "modes.yaml"
    api_modes.write_text(yaml.safe_dump(data))
    worker_root = tmp_path.resolve() / "worker-controlnets"  # as the worker resolves it
    worker_root.mkdir()
    single = CONTROLNETS[("sd15", "single")]  # "edges"; the folder one, tiny-controlnet-sd15, stays behind
    sidecar = single.removesuffix(".safetensors") + ".config"
    shutil.copyfile(MODEL_ROOT / single, worker_root / single)
    shutil.copytree(MODEL_ROOT / sidecar, worker_root / sidecar)
    with own_stack(tmp_path / "stack", api_modes) as stack:
        worker = stack.start_worker({"CONTROLNET_ROOT": str(worker_root)})
        base = stack.start_api()
        control = png64(square())
        ran = poll(base, submit(base, mode="control", prompt="a fox", seed=9, control_image=control)["id"])
        assert ran["status"] == "succeeded", ran
        assert f"ControlNet 'edges' ({worker_root / single})" in worker.log_path.read_text()
        lacking = submit(base, mode="control", prompt="a fox", control_image=control, controlnet="tiny-controlnet-sd15")
        failed = poll(base, lacking["id"])
        where = f"ControlNet 'tiny-controlnet-sd15' is not under {worker_root} on this worker host"
        assert failed["status"] == "failed" and where in failed["error"]["message"], failed
        assert poll(base, submit(base, mode="control", prompt="a fox")["id"])["status"] == "succeeded"
