"""python -m workers.onnx_export: the folder it writes and graphs that match torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.processes import ROOT
from workers.edge.model_folder import open_edge_model


def session(folder, name) -> ort.InferenceSession:
    return ort.InferenceSession(str(folder / name / "model.onnx"), providers=["CPUExecutionProvider"])


def test_folder_layout_and_manifest(tiny_lcm_onnx, tiny_lcm_model):
    manifest = json.loads((tiny_lcm_onnx / "edge.json").read_text())
    assert manifest["format"] == "dreamlab-edge" and manifest["runtime"] == "onnx"
    assert manifest["vae_scaling_factor"] == pytest.approx(0.18215)
    unet = [(i["name"], i["dtype"], i["shape"]) for i in manifest["graphs"]["unet"]["inputs"]]
    assert unet == [
        ("sample", "float32", ["batch", 4, "height", "width"]),
        ("timestep", "int64", [1]),
        ("encoder_hidden_states", "float32", ["batch", 77, 768]),
        ("timestep_cond", "float32", ["batch", 256]),
    ]
    assert manifest["graphs"]["text_encoder"]["inputs"] == [
        {"name": "input_ids", "dtype": "int32", "shape": ["batch", 77]}
    ]
    for name in ("text_encoder", "unet", "vae_decoder"):
        assert [i.name for i in session(tiny_lcm_onnx, name).get_inputs()] == [
            i["name"] for i in manifest["graphs"][name]["inputs"]
        ]
    source_scheduler = (tiny_lcm_model / "scheduler" / "scheduler_config.json").read_text()
    assert (tiny_lcm_onnx / "scheduler" / "scheduler_config.json").read_text() == source_scheduler
    assert open_edge_model(tiny_lcm_onnx, "onnx").tokenizer_dir.is_dir()


def test_a_unet_without_guidance_embedding_has_no_timestep_cond(tiny_onnx):
    assert [i.name for i in session(tiny_onnx, "unet").get_inputs()] == [
        "sample",
        "timestep",
        "encoder_hidden_states",
    ]


def test_graphs_match_torch_at_several_sizes(tiny_lcm_onnx, tiny_lcm_model):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 500, size=(1, 77)).astype(np.int32)
    encoder = CLIPTextModel.from_pretrained(tiny_lcm_model / "text_encoder", local_files_only=True).eval()
    unet = UNet2DConditionModel.from_pretrained(tiny_lcm_model / "unet", local_files_only=True).eval()
    vae = AutoencoderKL.from_pretrained(tiny_lcm_model / "vae", local_files_only=True).eval()
    with torch.no_grad():
        text = encoder(torch.from_numpy(ids).long())[0].numpy()
        np.testing.assert_allclose(
            session(tiny_lcm_onnx, "text_encoder").run(None, {"input_ids": ids})[0], text, atol=1e-4
        )
        for height, width in ((8, 8), (9, 12), (12, 8)):
            sample = rng.standard_normal((1, 4, height, width)).astype(np.float32)
            cond = rng.standard_normal((1, 256)).astype(np.float32)
            expected = unet(
                torch.from_numpy(sample),
                torch.tensor([759]),
                torch.from_numpy(text),
                timestep_cond=torch.from_numpy(cond),
            ).sample.numpy()
            feeds = {
                "sample": sample,
                "timestep": np.array([759]),
                "encoder_hidden_states": text,
                "timestep_cond": cond,
            }
            np.testing.assert_allclose(session(tiny_lcm_onnx, "unet").run(None, feeds)[0], expected, atol=1e-4)
            image = vae.decode(torch.from_numpy(sample)).sample.numpy()
            decoded = session(tiny_lcm_onnx, "vae_decoder").run(None, {"latent_sample": sample})[0]
            assert decoded.shape == (1, 3, height * 8, width * 8)
            np.testing.assert_allclose(decoded, image, atol=1e-4)


def test_the_command_refuses_a_folder_that_is_not_diffusers(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "workers.onnx_export", "--model", str(tmp_path), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "is not a diffusers folder (no model_index.json)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_command_exports_a_single_file_checkpoint_like_its_folder(family_models, tiny_onnx, tmp_path):
    """tiny-sd15.safetensors holds the weights of the tiny-sd15 folder: the exports must agree."""
    from transformers import CLIPTokenizer

    checkpoint = family_models[("sd15", "single")]
    out = tmp_path / "tiny-sd15-file-onnx"
    result = subprocess.run(
        [sys.executable, "-m", "workers.onnx_export", "--model", str(checkpoint), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"out": str(out)}
    manifest, reference = (json.loads((folder / "edge.json").read_text()) for folder in (out, tiny_onnx))
    assert manifest["source"] == str(checkpoint.resolve())
    assert (manifest["graphs"], manifest["vae_scaling_factor"]) == (
        reference["graphs"],
        reference["vae_scaling_factor"],
    )
    model = open_edge_model(out, "onnx")
    prompt = "a lighthouse at dusk"
    ids = [CLIPTokenizer.from_pretrained(f / "tokenizer")(prompt).input_ids for f in (out, tiny_onnx)]
    assert ids[0] == ids[1]
    scheduler = json.loads(model.scheduler_config.read_text())
    assert scheduler["beta_schedule"] == "scaled_linear" and scheduler["num_train_timesteps"] == 1000
    rng = np.random.default_rng(1)
    text = rng.standard_normal((1, 77, 768)).astype(np.float32)
    sample = rng.standard_normal((1, 4, 8, 12)).astype(np.float32)
    feeds = {
        "text_encoder": {"input_ids": rng.integers(0, 200, size=(1, 77)).astype(np.int32)},
        "unet": {"sample": sample, "timestep": np.array([499]), "encoder_hidden_states": text},
        "vae_decoder": {"latent_sample": sample},
    }
    for name, inputs in feeds.items():
        got, expected = (session(folder, name).run(None, inputs)[0] for folder in (out, tiny_onnx))
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_command_refuses_a_checkpoint_of_another_family(family_models, tmp_path):
    checkpoint = family_models[("sdxl", "single")]
    result = subprocess.run(
        [sys.executable, "-m", "workers.onnx_export", "--model", str(checkpoint), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "is an sdxl checkpoint; the edge backends run SD1.5 / LCM only" in result.stderr
    assert not (tmp_path / "out").exists()
