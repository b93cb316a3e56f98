"""Check a model's files before anything loads them or sizes them: each failure names the file and why.

Runs before the capacity check (which reads headers to size the model) and before diffusers, so a
pickle is refused as one, and a truncated file is named with its byte counts instead of failing
inside a loader.  Imports neither torch nor diffusers.
"""

from __future__ import annotations

from pathlib import Path

from modes import safetensors_header
from modes.families import UnsupportedCheckpoint


def check_model_files(path: Path) -> None:
    """Raise UnsupportedCheckpoint when the model at ``path`` (a single file or a diffusers folder)
    is a pickle, or a safetensors file shorter than its header says."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*/*.safetensors")) if path.is_dir() else []
    for file in files:
        if file.suffix in safetensors_header.PICKLE_SUFFIXES:
            raise UnsupportedCheckpoint(safetensors_header.pickle_message(file))
        if file.suffix != ".safetensors":
            continue  # the loader says what a file of another kind is
        try:  # a pickle renamed .safetensors fails here as a pickle, its header never parsed
            safetensors_header.check_complete(file)
        except ValueError as exc:
            raise UnsupportedCheckpoint(str(exc)) from None
