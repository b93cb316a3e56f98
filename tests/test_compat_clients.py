"""The real clients against a running stack: webuiapi on /sdapi/v1 (and the OpenAI SDK on /v1)."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading

import numpy as np
import openai
import pytest
import requests
import webuiapi
from PIL import Image
from sd_parsers import ParserManager
from sd_parsers.data import Generators

from jobs.infotext import read_parameters
from tests.client import poll
from tests.conftest import MODEL_ROOT, TINY
from tests.processes import own_stack, wait_for
from tests.sr_helpers import start_superres_worker


@pytest.fixture(scope="module")
def compat_stack(tmp_path_factory, modes_file):
    """A generation worker, a superres worker and the API on their own Redis."""
    with own_stack(tmp_path_factory.mktemp("compat-stack"), modes_file) as stack:
        stack.start_worker()
        start_superres_worker(stack)
        stack.base = stack.start_api()
        yield stack


@pytest.fixture
def webui(compat_stack):
    api = webuiapi.WebUIApi(baseurl=f"{compat_stack.base}/sdapi/v1", sampler="Euler a", steps=3)
    api.util_set_model("demo")
    return api


def picture(width: int = 64, height: int = 64) -> Image.Image:
    return Image.new("RGB", (width, height), (200, 120, 40))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encoded_png(image: Image.Image) -> str:
    return base64.b64encode(png(image)).decode("ascii")


def test_txt2img_makes_the_batch_asked_for(webui):
    result = webui.txt2img(prompt="a small cat", seed=5, width=64, height=48, batch_size=2, n_iter=2, cfg_scale=2.0)
    assert len(result.images) == 4 and all(image.size == (64, 48) for image in result.images)
    assert result.info["all_seeds"] == [5, 6, 7, 8] and result.info["seed"] == 5
    assert result.info["sampler_name"] == "Euler a" and result.info["sd_model_name"] == "demo"
    assert result.info["steps"] == 3 and result.info["cfg_scale"] == 2.0
    for image, seed, text in zip(result.images, result.info["all_seeds"], result.info["infotexts"], strict=True):
        assert image.info["parameters"] == text and f"Seed: {seed}," in text and "Sampler: Euler a," in text
    assert f"Model hash: {result.info['sd_model_hash']}," in result.info["infotexts"][0]

    read = ParserManager().parse(result.images[1])  # an independent reader of A1111's infotext
    assert read.generator == Generators.AUTOMATIC1111 and read.full_prompt == "a small cat"
    sampler = read.samplers[0]
    assert sampler.name == "Euler a" and sampler.parameters["seed"] == "6" and sampler.parameters["steps"] == "3"
    assert read.metadata["Size"] == "64x48" and sampler.model.name == "demo"
    weights = MODEL_ROOT / TINY / "unet" / "diffusion_pytorch_model.safetensors"
    assert sampler.model.hash == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]


def test_img2img_starts_from_the_image(webui):
    result = webui.img2img(
        images=[picture(64, 64)], prompt="a boat", seed=3, denoising_strength=0.6, width=64, height=64
    )
    assert len(result.images) == 1 and result.images[0].size == (64, 64)
    assert result.info["all_seeds"] == [3] and result.info["denoising_strength"] == 0.6
    assert "Denoising strength: 0.6" in result.info["infotexts"][0]


def square_mask(alpha: bool = False) -> Image.Image:
    """White (or, with ``alpha``, fully transparent) in the middle 16x16 of 64x64: the part to repaint."""
    if alpha:
        mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
        mask.paste((0, 0, 0, 0), (24, 24, 40, 40))
        return mask
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (24, 24, 40, 40))
    return mask


def assert_inpainted(image: Image.Image, init: Image.Image) -> None:
    """The corners, beyond the blur's reach (3 x mask_blur + 1 px), are the init image's exactly (the
    decoded image is pasted through the mask); the middle is repainted."""
    got, was = np.asarray(image.convert("RGB")).astype(int), np.asarray(init).astype(int)
    assert np.array_equal(got[:8, :8], was[:8, :8]) and np.array_equal(got[-8:, -8:], was[-8:, -8:])
    assert np.abs(got[28:36, 28:36] - was[28:36, 28:36]).mean() > 10


def test_img2img_with_a_mask_inpaints(webui):
    init = picture(64, 64)
    result = webui.img2img(
        images=[init], mask_image=square_mask(), prompt="a boat", seed=3, width=64, height=64, mask_blur=4
    )
    assert len(result.images) == 1
    assert_inpainted(result.images[0], init)


def test_controlnet_units_steer_the_job_through_the_modes_controlnet(webui, compat_stack):
    """webuiapi's ControlNetUnit, as the ControlNet extension takes it, runs the mode's ControlNet."""
    edges = Image.new("RGB", (64, 64), (0, 0, 0))
    edges.paste((255, 255, 255), (16, 16, 48, 48))
    # The mode per request: a switch through options would pin the worker to it (ROUTER_PIN) for later tests.
    control = {"sd_model_checkpoint": "control"}
    asked = {"prompt": "a house", "seed": 9, "width": 64, "height": 64, "steps": 3, "override_settings": control}
    plain = webui.txt2img(**asked).image
    unit = webuiapi.ControlNetUnit(image=edges, module="canny", model="edges [0123abcd]", weight=1.5)
    # A dict of our own: webuiapi writes the units into its default alwayson_scripts, shared by later calls.
    steered = webui.txt2img(**asked, controlnet_units=[unit], alwayson_scripts={}).image
    again = webui.txt2img(**asked, controlnet_units=[unit], alwayson_scripts={}).image
    assert np.array_equal(np.asarray(steered), np.asarray(again))
    assert not np.array_equal(np.asarray(steered), np.asarray(plain))
    body = {**asked, "alwayson_scripts": {"controlnet": {"args": [unit.to_dict()]}}}
    response = requests.post(f"{compat_stack.base}/sdapi/v1/txt2img", json=body, timeout=120)
    assert response.status_code == 200, response.text
    record = requests.get(f"{compat_stack.base}/api/jobs/{response.headers['X-Job-Id']}", timeout=30).json()
    params = record["params"]
    assert (params["controlnet"], params["preprocessor"], params["controlnet_conditioning_scale"]) == (
        "edges",
        "canny",
        1.5,
    )


def test_a_model_switch_through_options_takes_effect(webui, compat_stack):
    names = webui.util_get_model_names()
    slow = next(name for name in names if name.split(" [")[0] == "slow")
    webui.util_set_model(slow)
    assert webui.get_options()["sd_model_checkpoint"].split(" [")[0] == "slow"
    assert webui.util_get_current_model().split(" [")[0] == "slow"
    result = webui.txt2img(prompt="switched", seed=1, width=64, height=64, steps=2)
    assert result.info["sd_model_name"] == "slow"
    response = requests.post(f"{compat_stack.base}/sdapi/v1/options", json={"sd_model_checkpoint": "demo"}, timeout=30)
    switch = poll(compat_stack.base, response.headers["X-Job-Id"])
    assert switch["kind"] == "switch" and switch["mode"] == "demo" and switch["status"] == "succeeded"
    webui.set_options({"sd_model_checkpoint": "demo", "CLIP_stop_at_last_layers": 1})
    assert webui.txt2img(prompt="back", seed=1, width=64, height=64).info["sd_model_name"] == "demo"


def test_extra_single_image_upscales_by_passes(webui):
    result = webui.extra_single_image(picture(20, 10), upscaling_resize=3)
    assert result.images[0].size == (60, 30)
    assert result.images[0].info["parameters"] == "Postprocess upscale by: 3, Postprocess upscaler: Sub-Pixel CNN"


def test_every_compatible_job_is_a_job_on_the_native_path(compat_stack):
    base = compat_stack.base
    body = {
        "prompt": "a kite",
        "seed": 9,
        "width": 64,
        "height": 64,
        "steps": 2,
        "sampler_name": "DPM++ 2M",
        "scheduler": "Karras",
        "restore_faces": True,
        "tiling": True,
    }
    response = requests.post(f"{base}/sdapi/v1/txt2img", json=body, timeout=120)
    assert response.status_code == 200, response.text
    record = requests.get(f"{base}/api/jobs/{response.headers['X-Job-Id']}", timeout=10).json()
    assert record["kind"] == "generate" and record["status"] == "succeeded"
    assert record["params"]["sampler"] == "dpmpp_2m_karras" and record["params"]["seed"] == 9
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["images"][0])))
    assert "Sampler: DPM++ 2M Karras," in image.text["parameters"]


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        (
            "txt2img",
            {"alwayson_scripts": {"ControlNet": {"args": [{"model": "canny"}]}}},
            "alwayson_scripts",
            "the unit has no image",
        ),
        (
            "txt2img",
            {"alwayson_scripts": {"ADetailer": {"args": [{"ad_model": "face_yolov8n.pt"}]}}},
            "alwayson_scripts",
            "other than ControlNet",
        ),
        ("txt2img", {"enable_hr": True}, "enable_hr", "hires fix"),
        ("txt2img", {"sampler_name": "Heun"}, "sampler_name", "'DPM++ 2M Karras'"),
        ("txt2img", {"steps": 0}, "steps", "steps"),
        ("txt2img", {"override_settings": {"sd_model_checkpoint": "nope"}}, "sd_model_checkpoint", "'demo"),
        ("img2img", {"init_images": [encoded_png(picture())], "mask": "y"}, "mask", "mask must be a base64 image"),
    ],
)
def test_what_the_service_cannot_honour_is_a_400_that_says_so(compat_stack, path, body, field, words):
    response = requests.post(f"{compat_stack.base}/sdapi/v1/{path}", json={"prompt": "p", **body}, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_interrupt_cancels_the_callers_running_job(compat_stack):
    base = compat_stack.base
    answer: dict = {}
    body = {
        "prompt": "long",
        "seed": 1,
        "width": 64,
        "height": 64,
        "steps": 150,
        "override_settings": {"sd_model_checkpoint": "slow"},
    }

    def call() -> None:
        answer["response"] = requests.post(f"{base}/sdapi/v1/txt2img", json=body, timeout=300)

    caller = threading.Thread(target=call)
    caller.start()

    def sampling() -> bool:
        state = requests.get(f"{base}/sdapi/v1/progress", timeout=10).json()
        return state["state"]["job_count"] == 1 and state["progress"] > 0

    wait_for(sampling, 120, "the txt2img job sampling")
    assert requests.post(f"{base}/sdapi/v1/interrupt", timeout=10).status_code == 200
    caller.join(timeout=120)
    response = answer["response"]
    assert response.status_code == 409 and "canceled" in response.json()["error"]["message"]
    record = requests.get(f"{base}/api/jobs/{response.headers['X-Job-Id']}", timeout=10).json()
    assert record["status"] == "canceled"
    assert requests.get(f"{base}/sdapi/v1/progress", timeout=10).json()["state"]["job_count"] == 0


def test_listings(compat_stack):
    base = compat_stack.base
    samplers = [s["name"] for s in requests.get(f"{base}/sdapi/v1/samplers", timeout=10).json()]
    assert {"Euler a", "DPM++ 2M Karras", "LCM"} <= set(samplers)
    upscalers = [u["name"] for u in requests.get(f"{base}/sdapi/v1/upscalers", timeout=10).json()]
    assert upscalers == ["None", "Sub-Pixel CNN"]
    loras = {lora["name"] for lora in requests.get(f"{base}/sdapi/v1/loras", timeout=10).json()}
    assert len(loras) == 2


@pytest.fixture
def oai(compat_stack):
    return openai.OpenAI(base_url=f"{compat_stack.base}/v1", api_key="sk-anything", max_retries=0, timeout=300)


def decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_openai_generate_makes_n_images_of_the_size(oai):
    result = oai.images.generate(model="demo", prompt="a lamp", n=2, size="64x48", response_format="b64_json")
    images = [decoded(item.b64_json) for item in result.data]
    assert [image.size for image in images] == [(64, 48), (64, 48)]
    seeds = [int(re.search(r"Seed: (\d+),", image.text["parameters"]).group(1)) for image in images]
    assert seeds[1] == seeds[0] + 1
    assert result.created > 0 and result.size == "64x48"


def test_openai_url_answers_point_at_the_job(oai, compat_stack):
    raw = oai.images.with_raw_response.generate(prompt="a road", response_format="url")
    result = raw.parse()
    record = requests.get(f"{compat_stack.base}/api/jobs/{raw.headers['X-Job-Id']}", timeout=10).json()
    assert record["mode"] == "demo", "no model: the default mode"
    assert result.data[0].url == f"{compat_stack.base}/api/jobs/{record['id']}/result"
    assert Image.open(io.BytesIO(requests.get(result.data[0].url, timeout=10).content)).size == (64, 64)


def test_openai_jpeg_output_keeps_the_infotext(oai):
    result = oai.images.generate(model="demo", prompt="a jar", size="64x64", output_format="jpeg")
    image = decoded(result.data[0].b64_json)
    assert image.format == "JPEG" and "Model: demo" in read_parameters(image)


def test_openai_models_are_the_modes(oai):
    ids = {model.id for model in oai.models.list()}
    assert {"demo", "slow", "styled"} <= ids


def test_openai_edit_is_img2img(oai):
    buffer = io.BytesIO()
    picture(80, 80).save(buffer, format="JPEG")
    result = oai.images.edit(
        model="demo", image=("in.jpg", buffer.getvalue(), "image/jpeg"), prompt="paint it", size="64x64"
    )
    image = decoded(result.data[0].b64_json)
    assert image.size == (64, 64) and "Denoising strength: 0.3" in image.text["parameters"]


def test_openai_edit_with_a_mask_inpaints_where_it_is_transparent(oai):
    init = picture(64, 64)
    image, mask = io.BytesIO(), io.BytesIO()
    init.save(image, format="PNG")
    square_mask(alpha=True).save(mask, format="PNG")
    result = oai.images.edit(
        model="demo",
        image=("in.png", image.getvalue(), "image/png"),
        mask=("mask.png", mask.getvalue(), "image/png"),
        prompt="paint it",
        size="64x64",
    )
    painted = decoded(result.data[0].b64_json)
    assert "Denoising strength: 0.75" in painted.text["parameters"]
    assert_inpainted(painted, init)
    opaque = io.BytesIO()
    square_mask().save(opaque, format="PNG")
    with pytest.raises(openai.BadRequestError, match="alpha channel"):
        oai.images.edit(
            model="demo",
            image=("in.png", image.getvalue(), "image/png"),
            mask=("mask.png", opaque.getvalue(), "image/png"),
            prompt="paint it",
        )


def test_openai_errors_take_openais_shape(oai):
    with pytest.raises(openai.NotFoundError) as missing:
        oai.images.generate(model="dall-e-3", prompt="x")
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        oai.images.generate(model="demo", prompt="x", n=11)
    assert bad.value.param == "n" and bad.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as masked:
        oai.images.edit(
            image=("a.png", png(picture()), "image/png"), mask=("m.png", b"\x89PNG", "image/png"), prompt="x"
        )
    assert masked.value.param == "mask" and "mask: the file is not an image" in masked.value.message
    assert "object at 0x" not in masked.value.message


def test_openai_keys_are_checked_under_auth_keys(make_stack):
    from tests.test_keys import create_key

    stack = make_stack(AUTH="keys")
    base = stack.start_api()
    key = create_key(stack.env, "user", "sdk")
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=f"{base}/v1", api_key="dl_wrong", max_retries=0).models.list()
    assert refused.value.code == "invalid_api_key"
    assert "demo" in {model.id for model in openai.OpenAI(base_url=f"{base}/v1", api_key=key).models.list()}


def test_compatible_calls_wait_like_generate_and_are_admitted_like_any_job(make_stack):
    """No worker: the first call's job stays queued (504 after DEFAULT_TIMEOUT, naming it); QUEUE_MAX=1 then
    refuses the next, in each API's own shape."""
    stack = make_stack(DEFAULT_TIMEOUT="0.5", QUEUE_MAX="1")
    base = stack.start_api()
    waited = requests.post(f"{base}/sdapi/v1/txt2img", json={"prompt": "p", "width": 64, "height": 64}, timeout=30)
    assert waited.status_code == 504, waited.text
    assert waited.headers["Location"] == f"/api/jobs/{waited.headers['X-Job-Id']}"
    assert requests.get(base + waited.headers["Location"], timeout=10).json()["status"] == "queued"
    full = requests.post(f"{base}/sdapi/v1/txt2img", json={"prompt": "p"}, timeout=30)
    assert full.status_code == 429 and "QUEUE_MAX=1" in full.json()["error"]["message"]
    with pytest.raises(openai.RateLimitError) as limited:
        openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0).images.generate(prompt="p")
    assert limited.value.code == "rate_limit_exceeded"
