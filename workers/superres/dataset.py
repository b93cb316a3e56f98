"""The natural images the shipped weights were trained and evaluated on, with their sources and licences.

They are the sample images bundled in the scikit-image wheel (PyPI ``scikit-image``,
``skimage/data``), chosen for licences that allow training and redistribution of a
derived work: CC0 or public domain, as scikit-image's own docstrings state.  Images
with "no known copyright restrictions" but no explicit licence (coins, moon, ihc) and
non-photographs (logo, text, horse, phantom) and the motion-blurred clock are left out.  Held-out images are never
seen in training; they measure quality (bench/superres.py).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TRAIN, HELD_OUT = "train", "held-out"


@dataclass(frozen=True)
class SourceImage:
    name: str
    file: str  # under skimage/data in the scikit-image wheel
    role: str
    licence: str
    source: str


IMAGES = (
    SourceImage("astronaut", "astronaut.png", TRAIN, "public domain (NASA)", "https://flic.kr/p/r9qvLn"),
    SourceImage(
        "camera", "camera.png", TRAIN, "CC0 (Lav Varshney)", "https://github.com/scikit-image/scikit-image/issues/3927"
    ),
    SourceImage(
        "rocket",
        "rocket.jpg",
        TRAIN,
        "public domain (SpaceX)",
        "https://www.flickr.com/photos/spacexphotos/16511594820/in/photostream/",
    ),
    SourceImage("brick", "brick.png", TRAIN, "CC0 (CC0Textures)", "https://cc0textures.com/view.php?tex=Bricks25"),
    SourceImage(
        "grass", "grass.png", TRAIN, "CC0 (linolafett)", "https://www.deviantart.com/linolafett/art/Grass-01-434853879"
    ),
    SourceImage(
        "hubble_deep_field",
        "hubble_deep_field.jpg",
        TRAIN,
        "public domain (NASA)",
        "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
    ),
    SourceImage(
        "retina",
        "retina.jpg",
        TRAIN,
        "CC0 1.0 (Mikael Häggström)",
        "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
    ),
    SourceImage("chelsea", "chelsea.png", HELD_OUT, "CC0 (Stefan van der Walt)", "scikit-image"),
    SourceImage("coffee", "coffee.png", HELD_OUT, "CC0 (Rachel Michetti)", "scikit-image"),
    SourceImage("gravel", "gravel.png", HELD_OUT, "CC0 (CC0Textures)", "https://cc0textures.com/view.php?tex=Gravel04"),
)


def data_dir() -> Path:
    """skimage/data of the installed scikit-image, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-image is not installed: pip install -e '.[sr-train]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load(image: SourceImage) -> Image.Image:
    """The image as RGB or L (grayscale), fully decoded."""
    with Image.open(data_dir() / image.file) as opened:
        opened.load()
        return opened.convert("L") if opened.mode in ("L", "I;16", "I") else opened.convert("RGB")


def images(role: str) -> list[SourceImage]:
    return [image for image in IMAGES if image.role == role]


def luma(image: Image.Image) -> np.ndarray:
    """The Y channel as float32 in [0, 1], as the pipeline feeds the model."""
    y = image if image.mode == "L" else image.convert("YCbCr").getchannel("Y")
    return np.asarray(y, dtype=np.float32) / 255.0


def degrade(image: Image.Image, scale: int) -> tuple[Image.Image, Image.Image]:
    """(high-res cropped to a multiple of ``scale``, its bicubic downscale by ``scale``)."""
    width, height = image.width - image.width % scale, image.height - image.height % scale
    high = image.crop((0, 0, width, height))
    return high, high.resize((width // scale, height // scale), Image.Resampling.BICUBIC)
