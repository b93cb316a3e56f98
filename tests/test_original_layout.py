"""Original-layout single files: written by our converter, read back by diffusers, equal to the diffusers build."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from modes.families import family_from_shapes, read_header
from workers.original_layout import (
    UNET_PREFIX,
    VAE_PREFIX,
    UnknownKey,
    pipeline_to_original,
    unet_to_original,
)

FAMILIES = ("sd15", "sd2", "sdxl", "sdxl-refiner")
PIPELINES = {
    "sd15": "StableDiffusionPipeline",
    "sd2": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_single_file_loads_to_the_same_pipeline_as_the_folder(family_models, family):
    from workers.loader import load_pipeline

    folder = load_pipeline(family_models[(family, "diffusers")], torch.float32)
    single = load_pipeline(family_models[(family, "single")], torch.float32)
    assert type(folder).__name__ == type(single).__name__ == PIPELINES[family]
    assert public(single.config) == public(folder.config)
    for name, component in folder.components.items():
        other = single.components[name]
        if isinstance(component, torch.nn.Module):
            mine, theirs = component.state_dict(), other.state_dict()
            assert mine.keys() == theirs.keys(), name
            assert all(torch.equal(mine[key], theirs[key]) for key in mine), name
        if hasattr(component, "get_vocab"):
            assert component.get_vocab() == other.get_vocab() and component.pad_token == other.pad_token
        elif component is not None:
            assert public(component.config) == public(other.config), name


def public(config) -> dict:
    """A config without the bookkeeping entries (where it was loaded from, library versions, load dtype)."""
    items = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return {k: v for k, v in items.items() if not k.startswith("_") and not k.endswith("_version") and k != "dtype"}


def meta_pipeline(family: str) -> SimpleNamespace:
    """The family's full-size components from the shipped config, on the meta device (no memory)."""
    import diffusers
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from workers.model_configs import family_config

    parts = {}
    with family_config(family) as config, init_empty_weights():
        index = json.loads((config / "model_index.json").read_text())
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            if index.get(name, [None])[0] is None:
                continue
            if name.startswith("text"):
                model_class = CLIPTextModelWithProjection if "Projection" in index[name][1] else CLIPTextModel
                parts[name] = model_class(CLIPTextConfig.from_pretrained(config / name, local_files_only=True))
            else:
                model_class = getattr(diffusers, index[name][1])
                parts[name] = model_class.from_config(model_class.load_config(config / name))
    return SimpleNamespace(**parts)


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(tensor.shape) for key, tensor in state.items()}


@pytest.mark.parametrize(
    ("family", "diffusers_type", "unet_keys"),
    [("sd15", "v1", 686), ("sd2", "v2", 686), ("sdxl", "xl_base", 1680), ("sdxl-refiner", "xl_refiner", 1220)],
)
def test_full_size_layout_reads_back_through_diffusers(family, diffusers_type, unet_keys):
    """At the real sizes, diffusers' own detector and converters read our layout back key for key, shape for shape."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
        infer_diffusers_model_type,
    )

    pipe = meta_pipeline(family)
    checkpoint = pipeline_to_original(pipe, family)
    assert infer_diffusers_model_type(checkpoint) == diffusers_type
    assert family_from_shapes(shapes(checkpoint)).name == family
    assert sum(key.startswith(UNET_PREFIX) for key in checkpoint) == unet_keys
    assert shapes(convert_ldm_unet_checkpoint(checkpoint, pipe.unet.config)) == shapes(pipe.unet.state_dict())
    assert shapes(convert_ldm_vae_checkpoint(checkpoint, pipe.vae.config)) == shapes(pipe.vae.state_dict())
    encoders = {
        "sd15": [("text_encoder", None)],
        "sd2": [("text_encoder", "cond_stage_model.model.")],
        "sdxl": [("text_encoder", None), ("text_encoder_2", "conditioner.embedders.1.model.")],
        "sdxl-refiner": [("text_encoder_2", "conditioner.embedders.0.model.")],
    }[family]
    for name, openclip_prefix in encoders:
        encoder = getattr(pipe, name)
        if openclip_prefix is None:
            back = convert_ldm_clip_checkpoint(checkpoint)
            back.pop("text_model.embeddings.position_ids")
        else:
            back = convert_open_clip_checkpoint(encoder, checkpoint, prefix=openclip_prefix)
        flat = not hasattr(encoder, "text_model")
        back = {key.removeprefix("text_model.") if flat else key: value for key, value in back.items()}
        assert shapes(back) == shapes(encoder.state_dict()), name


def test_vae_attention_is_stored_as_1x1_convolutions(family_models):
    header = read_header(family_models[("sd15", "single")]).shapes
    assert header[VAE_PREFIX + "decoder.mid.attn_1.q.weight"] == (64, 64, 1, 1)
    assert header["model.diffusion_model.out.2.weight"] == (4, 32, 3, 3)


def test_an_unknown_weight_is_an_error_not_a_silent_drop():
    config = {"layers_per_block": 1, "up_block_types": ["UpBlock2D"]}
    with pytest.raises(UnknownKey, match="unet up_blocks.0.resnets.0.mystery"):
        unet_to_original({"up_blocks.0.resnets.0.mystery.weight": torch.zeros(1)}, config)
    with pytest.raises(UnknownKey, match="unet lora_layer.weight"):
        unet_to_original({"lora_layer.weight": torch.zeros(1)}, config)


def test_checkpoint_that_does_not_match_its_config_says_how_to_fix_it(tmp_path, family_models):
    from workers.loader import ModelLoadError, load_pipeline

    lone = tmp_path / "lone.safetensors"
    shutil.copyfile(family_models[("sdxl", "single")], lone)
    with pytest.raises(
        ModelLoadError, match=r"32 channels wide but the shipped sdxl config describes 320.*lone\.config"
    ):
        load_pipeline(lone, torch.float32)


def test_loader_refuses_what_it_cannot_load(tmp_path, family_models):
    from workers.loader import ModelLoadError, load_pipeline

    with pytest.raises(ModelLoadError, match="no such model folder or file"):
        load_pipeline(tmp_path / "missing.safetensors", torch.float32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="without model_index.json"):
        load_pipeline(tmp_path / "empty", torch.float32)
    with pytest.raises(ModelLoadError, match="only .safetensors"):
        load_pipeline(next(family_models[("sd15", "diffusers")].glob("*.json")), torch.float32)
