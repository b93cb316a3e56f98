"""Settings shared by the API and the workers, read from environment variables.

Every variable is documented in the README's configuration table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer; set it to a whole number or unset it") from None


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return raw in ("1", "true", "yes", "on")
    raise SystemExit(f"{name}={raw!r} is not a boolean; set it to 1 or 0, or unset it")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number; set it to a number or unset it") from None


@dataclass(frozen=True)
class Settings:
    redis_url: str
    modes_file: Path
    store_url: str
    queue_max: int
    default_timeout: float
    job_ttl: int
    visibility_timeout: int
    lease_ttl: float
    worker_backend: str
    retry_after: int
    modes_watch: bool
    num_workers: int = 1
    use_rknn_context_cfgs: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            modes_file=Path(os.environ.get("MODES_FILE", str(ROOT / "modes.yaml"))),
            store_url=os.environ.get("STORE_URL", str(ROOT / ".state" / "results")),
            queue_max=_int("QUEUE_MAX", 100),
            default_timeout=_float("DEFAULT_TIMEOUT", 120.0),
            job_ttl=_int("JOB_TTL", 7 * 24 * 3600),
            visibility_timeout=_int("VISIBILITY_TIMEOUT", 30),
            lease_ttl=_float("LEASE_TTL", 15.0),
            worker_backend=os.environ.get("WORKER_BACKEND", "torch"),
            retry_after=_int("RETRY_AFTER", 5),
            modes_watch=os.environ.get("MODES_WATCH", "1") != "0",
            num_workers=_int("NUM_WORKERS", 1),
            use_rknn_context_cfgs=_bool("USE_RKNN_CONTEXT_CFGS", True),
        )
