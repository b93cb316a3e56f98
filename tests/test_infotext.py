"""A1111 infotext: what sd-parsers (an independent reader) finds in our PNGs and JPEGs."""

from __future__ import annotations

import hashlib
import io
import os

from PIL import ExifTags, Image
from sd_parsers import ParserManager
from sd_parsers.data import Generators

import jobs.model_hash as model_hash_module
from jobs.infotext import read_parameters
from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from jobs.model_hash import model_hash
from workers.png import a1111_parameters, encode_png, postprocess_parameters
from workers.superres.encode import encode


def job_on(model: str, **params) -> GenerateJob:
    fields = {"prompt": "a red fox", "negative_prompt": "blurry", "width": 64, "height": 96, "steps": 5}
    return GenerateJob(
        job_id="j",
        mode=ResolvedMode(name="demo", model_path=model, scheduler="euler_a", backend="torch"),
        params=GenerateParams(**{**fields, "guidance": 6.5, "seed": 1234, **params}),
    )


# sd-parsers 0.6 keeps the last JPEG's UserComment keyed by id(image): a new image that CPython
# places where a freed one lived is read with the freed one's text (what an earlier test parsed).
# Parsing a JPEG without one that stays alive first moves that key to an id no new image can take.
_HELD = Image.open(io.BytesIO(encode(Image.new("RGB", (1, 1)), "jpeg", 90)))


def parsed(data: bytes | Image.Image):
    ParserManager().parse(_HELD)
    info = ParserManager().parse(data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data)))
    assert info is not None and info.generator == Generators.AUTOMATIC1111
    return info


def assert_reads_back(info, model_file):
    sampler = info.samplers[0]
    assert info.full_prompt == "a red fox" and sampler.negative_prompts[0].value == "blurry"
    assert sampler.name == "Euler a"
    assert sampler.parameters == {"cfg_scale": "6.5", "seed": "1234", "steps": "5"}
    assert info.metadata["Size"] == "64x96"
    assert sampler.model.name == "demo"
    assert sampler.model.hash == hashlib.sha256(model_file.read_bytes()).hexdigest()[:10]


def test_png_and_jpeg_infotext_read_back_as_automatic1111(tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_bytes(os.urandom(3000))
    text = a1111_parameters(job_on(str(model)), "Euler a")
    picture = Image.new("RGB", (64, 96), (10, 20, 30))
    assert_reads_back(parsed(encode_png(picture, text)), model)
    jpeg = encode(picture, "jpeg", 90, {"parameters": text})
    assert_reads_back(parsed(jpeg), model)
    assert read_parameters(Image.open(io.BytesIO(jpeg))) == text


def test_an_upscale_is_said_as_a1111_extras_say_it(tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"weights")
    text = postprocess_parameters(a1111_parameters(job_on(str(model)), "Euler a"), 9, "espcn")
    info = parsed(encode(Image.new("RGB", (8, 8)), "jpeg", 90, {"parameters": text}))
    assert info.metadata["Postprocess upscale by"] == "9" and info.metadata["Postprocess upscaler"] == "espcn"
    assert_reads_back(info, model)
    assert postprocess_parameters(None, 3, "espcn") == "Postprocess upscale by: 3, Postprocess upscaler: espcn"


def test_a_jpeg_is_read_afresh_where_an_earlier_one_lived():
    """An image at the id sd-parsers last saw, with other text, as when CPython reuses a freed image's address."""
    picture = Image.open(
        io.BytesIO(encode(Image.new("RGB", (8, 8)), "jpeg", 90, {"parameters": "a\nSteps: 1, Sampler: A, Seed: 1"}))
    )
    assert ParserManager().parse(picture).samplers[0].name == "A"
    exif = picture.getexif().get_ifd(ExifTags.IFD.Exif)
    exif[ExifTags.Base.UserComment] = b"UNICODE\0" + "b\nSteps: 1, Sampler: B, Seed: 1".encode("utf_16_be")
    assert parsed(picture).samplers[0].name == "B"


def test_img2img_says_its_strength_and_no_negative_prompt_line_when_empty(tmp_path):
    text = a1111_parameters(job_on(str(tmp_path / "gone"), negative_prompt="", init_image="k", strength=0.4), "DDIM")
    assert "Negative prompt" not in text and text.endswith("Model: demo, Denoising strength: 0.4")
    assert "Model hash" not in text, "no file to hash here: the key is left out, not invented"


def test_a_model_is_hashed_once_per_file_version(tmp_path, monkeypatch):
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"one")
    reads = []
    real = model_hash_module._sha256
    monkeypatch.setattr(model_hash_module, "_sha256", lambda path: reads.append(path) or real(path))
    first = model_hash(str(model))
    assert model_hash(str(model)) == first and len(reads) == 1
    model.write_bytes(b"two, longer")
    assert model_hash(str(model)) == hashlib.sha256(b"two, longer").hexdigest()[:10] and len(reads) == 2


def test_a_diffusers_folder_is_hashed_by_its_unet_weights(tiny_model):
    weights = tiny_model / "unet" / "diffusion_pytorch_model.safetensors"
    assert model_hash(str(tiny_model)) == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
