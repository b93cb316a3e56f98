"""Model and LoRA files that are wrong fail saying what is wrong, before anything loads them."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import torch

from jobs.messages import GenerateJob, GenerateParams, LoraRef, ResolvedMode
from tests.test_families import write_header_only

PICKLE_REFUSED = "refused: loading them can run code; convert them to .safetensors"


def job(model, loras=(), steps: int = 4, scheduler: str = "lcm", seed: int = 3) -> GenerateJob:
    return GenerateJob(
        job_id=f"bad-files-{seed}",
        mode=ResolvedMode(name="m", model_path=str(model), scheduler=scheduler, backend="torch", loras=tuple(loras)),
        params=GenerateParams(
            prompt="a fox", negative_prompt="", width=64, height=64, steps=steps, guidance=1.0, seed=seed
        ),
    )


@pytest.fixture(scope="module")
def backend():
    from workers.torch_backend import TorchBackend

    return TorchBackend()


@pytest.fixture(scope="module")
def sdxl_lora(family_models, tmp_path_factory):
    from workers.tiny_loras import build_lora

    return build_lora(family_models[("sdxl", "diffusers")], tmp_path_factory.mktemp("lora") / "xl.safetensors", 5)


def write_torch_save(path, zip_format: bool) -> None:
    """A file as torch.save writes it: a zip holding a pickle, or the legacy bare pickle."""
    torch.save({"state_dict": {"w": torch.zeros(4)}}, path, _use_new_zipfile_serialization=zip_format)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("name", ["model.ckpt", "renamed.safetensors"])
def test_pickles_are_refused_before_the_capacity_check_reads_them(backend, tmp_path, name, zip_format):
    from workers.loader import ModelLoadError

    path = tmp_path / name
    write_torch_save(path, zip_format)
    with pytest.raises(ModelLoadError, match=PICKLE_REFUSED) as failure:
        backend.prepare(job(path).mode, "bad-pickle")
    assert "header of" not in str(failure.value)
    assert backend.loaded_mode is None


def truncate(path, missing: int) -> tuple[int, int]:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size - missing)
    return size - missing, size


def test_a_truncated_single_file_names_its_byte_counts(backend, family_models, tmp_path):
    from workers.loader import ModelLoadError

    path = tmp_path / "cut.safetensors"
    shutil.copyfile(family_models[("sd15", "single")], path)
    shutil.copytree(family_models[("sd15", "single")].with_suffix(".config"), tmp_path / "cut.config")
    have, want = truncate(path, 1000)
    with pytest.raises(ModelLoadError, match=f"cut.safetensors: truncated: {have} of {want} bytes"):
        backend.prepare(job(path).mode, "bad-cut")


def test_a_truncated_file_in_a_folder_is_named(backend, family_models, tmp_path):
    from workers.loader import ModelLoadError

    folder = tmp_path / "cut-folder"
    shutil.copytree(family_models[("sd15", "diffusers")], folder)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    have, want = truncate(weights, 1)
    with pytest.raises(ModelLoadError, match=f"vae/diffusion_pytorch_model.safetensors: truncated: {have} of {want}"):
        backend.prepare(job(folder).mode, "bad-cut-folder")


def test_lora_families_from_shapes_and_kohya_metadata(tmp_path, tiny_loras, sdxl_lora):
    from modes.lora_families import lora_family

    assert lora_family(sdxl_lora) == "sdxl"
    assert {lora_family(path) for path in tiny_loras.values()} == {"sd15"}  # diffusers and kohya formats
    versions = {"sdxl_base_v1-0": "sdxl", "sd_v1": "sd15", "sd_v2_768_v": "sd2"}
    for version, family in versions.items():
        path = tmp_path / f"{version}.safetensors"
        write_header_only(
            path,
            {"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 8)},
            {"ss_base_model_version": version},
        )
        assert lora_family(path) == family
    second_encoder_only = tmp_path / "te2.safetensors"
    write_header_only(second_encoder_only, {"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 8)})
    assert lora_family(second_encoder_only) == "sdxl"


def test_a_lora_of_another_family_is_refused_and_the_base_keeps_serving(backend, tiny_model, tiny_loras, sdxl_lora):
    from workers.errors import JobError

    baseline = np.asarray(backend.generate(job(tiny_model), lambda i, n: None).image)
    style = LoraRef(str(tiny_loras["style.safetensors"]), 1.0, "style")
    with pytest.raises(JobError, match="SDXL LoRA on an SD1.5 model"):
        backend.generate(job(tiny_model, [style, LoraRef(str(sdxl_lora), 1.0, "xl")]), lambda i, n: None)
    again = np.asarray(backend.generate(job(tiny_model), lambda i, n: None).image)
    assert np.array_equal(baseline, again)


def test_a_lora_of_another_family_is_refused_at_reload(tmp_path, tiny_model, sdxl_lora):
    from modes import ModesError
    from modes.config import load_modes, parse_modes

    text = json.dumps(
        {
            "model_root": str(tiny_model.parent),
            "lora_root": str(sdxl_lora.parent),
            "modes": {"styled": {"model": tiny_model.name, "loras": [sdxl_lora.name]}},
        }
    )
    modes_file = tmp_path / "modes.yaml"
    modes_file.write_text(text)
    with pytest.raises(ModesError, match="mode 'styled': .*xl.safetensors: SDXL LoRA on an SD1.5 model"):
        load_modes(modes_file)
    # Published text parsed on another host is not checked against this host's files: its worker refuses at load.
    assert parse_modes(text, modes_file).modes["styled"].loras
    modes_file.write_text(text.replace(sdxl_lora.name, "not-yet.safetensors"))
    assert load_modes(modes_file).modes["styled"].loras  # checked at load instead


def test_pndm_reports_the_steps_asked_for(backend, family_models):
    steps: list[tuple[int, int]] = []
    backend.generate(
        job(family_models[("sd15", "diffusers")], steps=2, scheduler="default"), lambda *s: steps.append(s)
    )
    assert type(backend._base_scheduler).__name__ == "PNDMScheduler"
    assert len(steps) == 3  # PLMS evaluates its first step twice
    assert steps == [(1, 2), (1, 2), (2, 2)]


def test_safetensors_whose_header_size_starts_like_a_pickle_still_load(tmp_path):
    """A header of 0x280 bytes starts with the bytes of a protocol-2 pickle; it is read as safetensors."""
    from modes.safetensors_header import read_header
    from workers.model_files import check_model_files

    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header += b" " * (0x280 - len(header))
    path = tmp_path / "padded.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    assert path.read_bytes()[:2] == b"\x80\x02"
    check_model_files(path)
    assert read_header(path)["w"]["shape"] == [1]


def vm_peak(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def write_sparse_truncated(source, out, claimed: int, present: int) -> int:
    """``source`` (a checkpoint) with one more tensor of ``claimed`` bytes of which ``present`` are in
    the file (a sparse hole: no disk used); returns the header's size."""
    data = source.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    end = max(entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__")
    header["model.diffusion_model.padding"] = {"dtype": "U8", "shape": [claimed], "data_offsets": [end, end + claimed]}
    raw = json.dumps(header).encode()
    with open(out, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw + data[8 + size :])
        handle.truncate(8 + len(raw) + end + present)
    shutil.copytree(source.with_suffix(".config"), out.with_suffix(".config"), dirs_exist_ok=True)
    return 8 + len(raw)


def test_a_worker_fails_each_bad_file_and_keeps_serving_without_growing(
    tmp_path, redis_server, family_models, tiny_model, sdxl_lora
):
    """Each bad file's job fails with its message; the demo mode serves after them, and the worker's
    peak memory grew by no more than the files' headers plus allocator slack, where reading the
    truncated file as text (diffusers' fallback) would cost its 256 MiB present bytes or more."""
    from tests.client import poll, submit
    from tests.conftest import MODEL_ROOT
    from tests.processes import Stack, stack_env

    bad = MODEL_ROOT / "bad-files"
    shutil.rmtree(bad, ignore_errors=True)
    bad.mkdir()
    write_torch_save(bad / "model.ckpt", zip_format=True)
    write_torch_save(bad / "renamed.safetensors", zip_format=False)
    headers = write_sparse_truncated(
        family_models[("sd15", "single")], bad / "cut.safetensors", 512 * 2**20, 256 * 2**20
    )
    demo = {"model": tiny_model.name, "default_size": "64x64", "default_steps": 4, "default_guidance": 1.0}
    demo["scheduler"] = "lcm"
    modes = {
        "demo": demo,
        "ckpt": {**demo, "model": "bad-files/model.ckpt"},
        "renamed": {**demo, "model": "bad-files/renamed.safetensors"},
        "cut": {**demo, "model": "bad-files/cut.safetensors"},
        "xl-lora": {**demo, "loras": ["xl.safetensors"]},
    }
    loras = tmp_path / "loras"
    loras.mkdir()
    modes_file = tmp_path / "modes.yaml"
    modes_file.write_text(json.dumps({"model_root": str(MODEL_ROOT), "lora_root": str(loras), "modes": modes}))
    stack = Stack(stack_env(redis_server.url, modes_file, tmp_path / "store"), tmp_path)
    try:
        worker = stack.start_worker()
        base = stack.start_api()
        shutil.copyfile(sdxl_lora, loras / "xl.safetensors")  # after the reload: refused when the worker loads it
        assert poll(base, submit(base, mode="demo", prompt="a fox", seed=1)["id"])["status"] == "succeeded"
        before = vm_peak(worker.pid)
        expected = {
            "ckpt": PICKLE_REFUSED,
            "renamed": PICKLE_REFUSED,
            "cut": "cut.safetensors: truncated: ",
            "xl-lora": "SDXL LoRA on an SD1.5 model",
        }
        for mode, message in expected.items():
            record = poll(base, submit(base, mode=mode, prompt="a fox", seed=1)["id"])
            assert record["status"] == "failed" and message in record["error"]["message"], (mode, record)
        assert poll(base, submit(base, mode="demo", prompt="a fox", seed=2)["id"])["status"] == "succeeded"
        assert vm_peak(worker.pid) - before <= headers + 32 * 2**20
    finally:
        stack.stop()
        shutil.rmtree(bad, ignore_errors=True)


def test_a_truncated_lora_is_named_before_any_adapter_changes(backend, tiny_model, tiny_loras, tmp_path):
    from workers.loader import ModelLoadError

    lora = tmp_path / "cut-lora.safetensors"
    shutil.copyfile(tiny_loras["style.safetensors"], lora)
    have, want = truncate(lora, 100)
    baseline = np.asarray(backend.generate(job(tiny_model), lambda i, n: None).image)
    with pytest.raises(ModelLoadError, match=f"cut-lora.safetensors: truncated: {have} of {want} bytes"):
        backend.generate(job(tiny_model, [LoraRef(str(lora), 1.0, "cut")]), lambda i, n: None)
    assert np.array_equal(baseline, np.asarray(backend.generate(job(tiny_model), lambda i, n: None).image))
