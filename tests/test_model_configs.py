"""The shipped config folders: real architectures, the real CLIP tokenizer, sidecar overlays."""

from __future__ import annotations

import json

import pytest

from workers.model_configs import BPE_FOLDER, family_config, shipped_config

# Parameter counts of the published models (random weights have the same shapes).
PUBLISHED_PARAMETERS = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd2": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840},
    "sdxl-refiner": {"unet": 2_259_526_660, "vae": 83_653_863, "text_encoder_2": 694_659_840},
}
# Which tokenizer pads with "!" (id 0): OpenCLIP's, as in SD2 and SDXL's second tokenizer.
PADS = {
    ("sd15", "tokenizer"): 49407,
    ("sd2", "tokenizer"): 0,
    ("sdxl", "tokenizer"): 49407,
    ("sdxl", "tokenizer_2"): 0,
    ("sdxl-refiner", "tokenizer_2"): 0,
}


@pytest.mark.parametrize(("family", "folder"), sorted(PADS))
def test_real_clip_tokenizer_offline(family, folder):
    from transformers import CLIPTokenizer

    with family_config(family) as config:
        tokenizer = CLIPTokenizer.from_pretrained(config / folder, local_files_only=True)
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer("an astronaut riding a horse").input_ids == [49406, 550, 18376, 6765, 320, 4558, 49407]
    padded = tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[:4] == [49406, 320, 2368, 49407]
    assert set(padded[4:]) == {PADS[(family, folder)]}


@pytest.mark.parametrize("family", sorted(PUBLISHED_PARAMETERS))
def test_shipped_architectures_have_the_published_sizes(family):
    """Instantiated without memory (meta device), each component has the real model's parameter count."""
    import diffusers
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with family_config(family) as config:
        index = json.loads((config / "model_index.json").read_text())
        counts = {}
        for name in PUBLISHED_PARAMETERS[family]:
            library, class_name = index[name]
            with init_empty_weights():
                if library == "transformers":
                    model_class = CLIPTextModelWithProjection if "Projection" in class_name else CLIPTextModel
                    model = model_class(CLIPTextConfig.from_pretrained(config / name, local_files_only=True))
                else:
                    model_class = getattr(diffusers, class_name)
                    model = model_class.from_config(model_class.load_config(config / name))
            counts[name] = sum(p.numel() for p in model.parameters())
    assert counts == PUBLISHED_PARAMETERS[family]


def test_assembled_folder_is_complete_and_temporary():
    with family_config("sdxl") as config:
        for tokenizer in ("tokenizer", "tokenizer_2"):
            for name in ("vocab.json", "merges.txt"):
                assert (config / tokenizer / name).read_bytes() == (BPE_FOLDER / name).read_bytes()
        assert (config / "model_index.json").read_text() == (shipped_config("sdxl") / "model_index.json").read_text()
    assert not config.exists()


def test_sidecar_replaces_whole_components(tmp_path):
    sidecar = tmp_path / "model.config"
    (sidecar / "scheduler").mkdir(parents=True)
    (sidecar / "scheduler" / "scheduler_config.json").write_text('{"_class_name": "DDIMScheduler"}')
    with family_config("sd2", sidecar) as config:
        assert json.loads((config / "scheduler" / "scheduler_config.json").read_text()) == {
            "_class_name": "DDIMScheduler"
        }
        assert (config / "unet" / "config.json").read_text() == (shipped_config("sd2") / "unet/config.json").read_text()
        assert (config / "tokenizer" / "vocab.json").exists()


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="no shipped config for family 'sd3'"):
        shipped_config("sd3")
