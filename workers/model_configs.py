"""The weight-free diffusers config folders that single-file checkpoints load with.

``from_single_file`` needs a diffusers layout to know each component's
architecture; without ``config=`` it asks the hub.  The project ships one folder
per family under ``workers/configs/`` (the real full-size architectures:
model_index.json, each component's config.json, the scheduler, the tokenizer
settings) and one copy of the CLIP BPE vocabulary in ``configs/clip-bpe/``.
``family_config`` assembles a complete folder in a temporary directory for the
duration of a load: the family's files, the vocabulary copied into each
tokenizer folder, and, when a checkpoint has one, its *config sidecar*.

A config sidecar is a folder named ``<checkpoint>.config`` beside
``<checkpoint>.safetensors``, laid out like a diffusers model without weights.
Each component folder in it (``unet/``, ``scheduler/``, ``tokenizer/`` ...)
replaces the shipped one, and its ``model_index.json`` the shipped index: for
checkpoints whose architecture differs from the family's reference (the tiny
test models) or an SD2 model trained with epsilon instead of v-prediction.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
BPE_FOLDER = CONFIG_ROOT / "clip-bpe"
BPE_FILES = ("vocab.json", "merges.txt")
SIDECAR_SUFFIX = ".config"


def shipped_config(family: str) -> Path:
    """The committed folder of ``family`` (without the vocabulary files)."""
    folder = CONFIG_ROOT / family
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"no shipped config for family {family!r}; see {CONFIG_ROOT}")
    return folder


def sidecar_for(checkpoint: Path) -> Path | None:
    """The config sidecar folder of a single-file checkpoint, if there is one."""
    folder = Path(checkpoint).with_suffix(SIDECAR_SUFFIX)
    return folder if folder.is_dir() else None


@contextmanager
def family_config(family: str, sidecar: Path | None = None) -> Iterator[Path]:
    """A complete config folder for ``family`` (overlaid with ``sidecar``), removed on exit."""
    with tempfile.TemporaryDirectory(prefix=f"dreamlab-{family}-config-") as tmp:
        folder = Path(tmp) / family
        shutil.copytree(shipped_config(family), folder)
        if sidecar is not None:
            _overlay(sidecar, folder)
        for tokenizer in folder.glob("tokenizer*"):
            for name in BPE_FILES:
                if not (tokenizer / name).exists():
                    shutil.copyfile(BPE_FOLDER / name, tokenizer / name)
        yield folder


def _overlay(sidecar: Path, folder: Path) -> None:
    """Each component folder and file of ``sidecar`` replaces the one in ``folder``."""
    for entry in sidecar.iterdir():
        target = folder / entry.name
        if entry.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(entry, target)
        elif entry.is_file():
            shutil.copyfile(entry, target)
