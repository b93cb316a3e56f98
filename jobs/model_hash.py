"""AUTOMATIC1111's ``Model hash``: the first 10 hex digits of the SHA-256 of the model file.

Hashing a checkpoint reads all of it (gigabytes), so each file is hashed once per
process and the answer kept, keyed by path, size and modification time: a file
replaced in place is hashed again.  The runner starts the hash when a job starts
(``prefetch``), so it overlaps the pipeline and the image waits only for the rest.
A diffusers folder has no one file; its UNet weights stand for it.  The worker writes
the hash into every image's infotext and publishes it in Redis (``MODEL_HASHES``) for
the API's listings (``/sdapi/v1/sd-models``), which never read model files.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

SHORT = 10
_CHUNK = 1 << 20
_FOLDER_WEIGHTS = (
    "unet/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.bin",
    "unet/model.onnx",
)
_known: dict[tuple[str, int, int], Future[str]] = {}
_lock = threading.Lock()
# hashlib lets go of the GIL on large reads: a first hash runs beside the job's pipeline (prefetch).
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-hash")


def prefetch(model_path: str) -> None:
    """Start hashing the model in the background unless known, so a first job need not wait for it."""
    _pending(model_path)


def model_hash(model_path: str) -> str | None:
    """The short hash of the model at ``model_path`` (file or diffusers folder), or None when it has no
    weights file this host can read."""
    pending = _pending(model_path)
    return pending.result() if pending else None


def _pending(model_path: str) -> Future[str] | None:
    weights = _weights_file(Path(model_path))
    if weights is None:
        return None
    try:
        stat = weights.stat()
    except OSError:
        return None
    # By the path as given (a worker's located path is already resolved): resolving it again on every job
    # cost more than the rest of this function.
    key = (str(weights), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key not in _known:
            _known[key] = _pool.submit(lambda: _sha256(weights)[:SHORT])
        return _known[key]


def _weights_file(path: Path) -> Path | None:
    if path.is_file():
        return path
    if path.is_dir():
        return next((path / name for name in _FOLDER_WEIGHTS if (path / name).is_file()), None)
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
