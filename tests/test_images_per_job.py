"""Several images per job (``n``) and a sampler per request, on the native job API."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import requests
import yaml
from PIL import Image

from api.errors import ApiError
from api.validation import SEED_MAX, parse_generation
from jobs.samplers import A1111_NAMES, resolve_sampler
from modes import load_modes
from tests.client import poll, submit


@pytest.fixture
def modes(tmp_path):
    path = tmp_path / "modes.yaml"
    spec = {
        "default_mode": "fast",
        "modes": {
            "fast": {"model": "m", "scheduler": "lcm", "default_steps": 4, "default_size": "64x64"},
            "full": {"model": "m", "default_size": "64x64"},
            "npu": {"model": "m", "scheduler": "lcm", "backend": "rknn", "default_size": "64x64"},
        },
    }
    path.write_text(yaml.safe_dump(spec))
    return load_modes(path)


@pytest.mark.parametrize(("name", "project"), [("Euler a", "euler_a"), ("dpm++ 2m karras", "dpmpp_2m_karras")])
def test_a1111_and_project_sampler_names_resolve(name, project):
    assert resolve_sampler(name) == project
    assert resolve_sampler(project) == project
    assert resolve_sampler(A1111_NAMES[project]) == project


def test_sampler_and_n_reach_the_job(modes):
    _, params, _ = parse_generation({"prompt": "p", "sampler": "DPM++ 2M", "n": 3, "seed": 9}, modes)
    assert (params.sampler, params.n, params.seed) == ("dpmpp_2m", 3, 9)
    _, params, _ = parse_generation({"prompt": "p"}, modes)
    assert (params.sampler, params.n) == (None, 1)


def test_an_unknown_sampler_is_refused_with_the_accepted_names(modes):
    with pytest.raises(ApiError) as caught:
        parse_generation({"prompt": "p", "sampler": "Heun++"}, modes)
    assert caught.value.status == 400 and caught.value.field == "sampler"
    assert "'Euler a'" in caught.value.message and "'DPM++ 2M Karras'" in caught.value.message


def test_an_edge_mode_takes_lcm_only(modes):
    assert parse_generation({"prompt": "p", "mode": "npu", "sampler": "LCM"}, modes)[1].sampler == "lcm"
    with pytest.raises(ApiError, match="LCM only"):
        parse_generation({"prompt": "p", "mode": "npu", "sampler": "Euler"}, modes)


def test_the_last_image_seed_must_be_a_seed(modes):
    assert parse_generation({"prompt": "p", "n": 2, "seed": SEED_MAX - 1}, modes)[1].seed == SEED_MAX - 1
    with pytest.raises(ApiError) as caught:
        parse_generation({"prompt": "p", "n": 2, "seed": SEED_MAX}, modes)
    assert caught.value.field == "seed"
    for n in (0, 11, "2"):
        with pytest.raises(ApiError):
            parse_generation({"prompt": "p", "n": n}, modes)


def pixels(base: str, url: str) -> tuple[np.ndarray, str]:
    response = requests.get(f"{base}{url}", timeout=60)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    return np.asarray(image.convert("RGB"), dtype=np.int16), image.text["parameters"]


def test_a_job_of_three_images_has_seeds_in_a_row_each_reproduced_alone(api_stack):
    base = api_stack.base
    job = submit(base, prompt="three foxes", size="64x64", seed=40, n=3)
    record = poll(base, job["id"])
    assert record["status"] == "succeeded", record
    images = record["result"]["images"]
    assert [image["seed"] for image in images] == [40, 41, 42]
    assert images[0]["url"] == record["result"]["url"] == f"/api/jobs/{job['id']}/result"
    decoded = [pixels(base, image["url"]) for image in images]
    for (_, text), seed in zip(decoded, (40, 41, 42), strict=True):
        assert f"Seed: {seed}," in text
    assert not np.array_equal(decoded[0][0], decoded[1][0])
    assert requests.get(f"{base}/api/jobs/{job['id']}/images/3", timeout=10).status_code == 404

    alone = poll(base, submit(base, prompt="three foxes", size="64x64", seed=41)["id"])
    difference = np.abs(decoded[1][0] - pixels(base, alone["result"]["url"])[0])
    assert difference.max() <= 2, "image 1 of the job is the job of its seed alone (float noise apart)"


def test_a_sampler_per_request_runs_and_is_named_in_the_infotext(api_stack):
    base = api_stack.base
    runs = {}
    for sampler in ("Euler a", "dpmpp_2m_karras", None):
        body = {"prompt": "a boat", "size": "64x64", "seed": 3, "num_inference_steps": 3}
        job = submit(base, **body, **({"sampler": sampler} if sampler else {}))
        record = poll(base, job["id"])
        assert record["status"] == "succeeded", record
        runs[sampler] = pixels(base, record["result"]["url"])
        assert record["result"]["sampler"] == re.search(r"Sampler: ([^,]+),", runs[sampler][1]).group(1)
    assert "Sampler: Euler a," in runs["Euler a"][1]
    assert "Sampler: DPM++ 2M Karras," in runs["dpmpp_2m_karras"][1]
    assert "Sampler: LCM," in runs[None][1], "no sampler: the mode's own"
    assert not np.array_equal(runs["Euler a"][0], runs[None][0])


def test_superres_takes_one_image(api_stack):
    body = {"prompt": "p", "n": 2, "superres": True}
    response = requests.post(f"{api_stack.base}/api/jobs", json=body, timeout=10)
    assert response.status_code == 400 and "n=1" in response.json()["error"]["message"], response.text
