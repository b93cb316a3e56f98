"""Decoding untrusted images (jobs/images.py) and the SR message and limits (jobs/superres.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jobs.images import ImageRejected, decode, normalize_mode, probe
from jobs.messages import GenerateJob
from jobs.superres import SuperResJob, SuperResOptions, pixel_limit_message
from tests.sr_helpers import encoded, picture, png_claiming

LIMIT = 10_000_000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is text and not a picture" * 10, "not an image"),
        (encoded(picture(64, 64))[:300], "truncated or corrupt"),
        (encoded(picture(64, 64), "JPEG")[:800], "truncated or corrupt"),
        (png_claiming(60_000, 60_000), "decompression bomb"),
        (png_claiming(2_000, 2_000), "at most 1000000 pixels"),
        (png_claiming(3_300, 100), "aspect ratio of 33:1"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "bomb", "over-limit", "aspect", "eps"],
)
def test_bad_files_are_rejected_with_a_reason(data, message):
    with pytest.raises(ImageRejected, match=message):
        decode(data, 1_000_000)


def test_zero_size_is_rejected():
    with pytest.raises(ImageRejected, match="zero size|not an image"):
        probe(png_claiming(0, 10), LIMIT)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_probe_reads_the_header_only():
    bomb = png_claiming(12_000, 12_000)  # 144 M pixels claimed, a few KB of data
    info = probe(bomb, 2**62)
    assert (info.width, info.height, info.format) == (12_000, 12_000, "PNG")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"])
def test_supported_formats_decode(fmt):
    image = decode(encoded(picture(33, 21), fmt), LIMIT)
    assert image.size == (33, 21) and image.mode in ("RGB", "RGBA")


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image = decode(encoded(picture(40, 20), "JPEG", exif=exif), LIMIT)
    assert image.size == (20, 40)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("P", "RGB"), ("1", "L"), ("I;16", "L"), ("CMYK", "RGB"), ("LA", "LA"), ("RGBA", "RGBA"), ("F", "L")],
)
def test_modes_are_normalized(mode, expected):
    assert normalize_mode(Image.new(mode, (4, 4))).mode == expected


def test_palette_transparency_becomes_alpha():
    image = picture(16, 16, "RGBA").convert("P")
    image.info["transparency"] = 0
    assert normalize_mode(image).mode == "RGBA"


def test_sixteen_bit_grey_keeps_its_range():
    deep = Image.fromarray(np.array([[0, 65535], [32768, 256]], dtype=np.uint16))
    assert np.asarray(normalize_mode(deep)).tolist() == [[0, 255], [128, 1]]


def test_pixel_limit_message_names_the_limit_and_the_size():
    assert pixel_limit_message(100, 100, 3, 2, LIMIT) is None
    message = pixel_limit_message(200, 100, 3, 3, LIMIT)
    assert "5400x2700" in message and "14580000 pixels" in message and "SR_MAX_PIXELS=10000000" in message


def test_messages_round_trip_through_json_dicts():
    options = SuperResOptions(magnitude=2, out_format="jpeg", quality=80)
    job = SuperResJob(job_id="j", input_key="uploads/j", options=options, base_result={"seed": 3})
    assert SuperResJob.from_dict(job.to_dict()) == job
    generation = {
        "job_id": "g",
        "mode": {"name": "m", "model_path": "/m", "scheduler": "lcm", "backend": "torch"},
        "params": {
            "prompt": "p",
            "negative_prompt": "",
            "width": 64,
            "height": 64,
            "steps": 4,
            "guidance": 1.0,
            "seed": 1,
        },
    }
    assert GenerateJob.from_dict(generation).superres is None
    with_sr = GenerateJob.from_dict({**generation, "superres": {"magnitude": 1, "out_format": "png", "quality": 95}})
    assert with_sr.superres == SuperResOptions(1, "png", 95)
    assert GenerateJob.from_dict(with_sr.to_dict()) == with_sr
