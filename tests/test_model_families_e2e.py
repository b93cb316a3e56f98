"""Every model family, as a diffusers folder and as an original-layout single file, through real processes.

API (gunicorn) -> Redis -> Celery worker -> workers.loader -> diffusers -> store, with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.client import poll, result_bytes, submit


def finished_image(base: str, job: dict) -> np.ndarray:
    record = poll(base, job["id"])
    assert record["status"] == "succeeded", record
    image = Image.open(io.BytesIO(result_bytes(base, job["id"])))
    assert image.format == "PNG"
    return np.asarray(image)


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl"])
def test_folder_and_single_file_give_the_same_pixels(api_stack, family):
    request = {"prompt": "a red fox in snow", "size": "64x96", "seed": 5}
    jobs = [
        submit(api_stack.base, mode=family, **request),
        submit(api_stack.base, mode=f"{family}-file", **request),
        submit(api_stack.base, mode=f"{family}-file", **request),
        submit(api_stack.base, mode=f"{family}-file", **{**request, "seed": 6}),
    ]
    folder, single, again, other = (finished_image(api_stack.base, job) for job in jobs)
    assert folder.shape == (96, 64, 3)
    assert np.array_equal(folder, single)
    assert np.array_equal(single, again)
    assert not np.array_equal(single, other)
