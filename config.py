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


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first when unset."""
    raw = os.environ.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise SystemExit(f"{name}={raw!r} is not one of {', '.join(choices)}; set one of them or unset it")
    return raw


def _positive(name: str, default: float) -> float:
    value = _float(name, default)
    if value <= 0:
        raise SystemExit(f"{name}={value:g} must be greater than 0")
    return value


def _presign_seconds() -> int:
    seconds = _int("S3_PRESIGN_SECONDS", 300)
    if not 1 <= seconds <= 7 * 24 * 3600:  # S3 signs a URL for at most a week
        raise SystemExit(f"S3_PRESIGN_SECONDS={seconds} must be between 1 and 604800 (a week)")
    return seconds


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
    router: str = "affinity"
    router_min_dwell: float = 2.0
    router_starvation: float = 30.0
    router_pin: float = 60.0
    router_interval: float = 0.5
    router_switch_cost: float = 1.0
    priority_aging: float = 60.0
    batch_max: int = 4
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    store_serve: str = "proxy"
    store_fsync: bool = False
    max_json_bytes: int = 24 * 1024 * 1024
    s3_presign_seconds: int = 300
    auth: str = "off"
    key_rate: float = 10.0
    key_burst: int = 60
    key_jobs_max: int = 20
    key_jobs_per_day: int = 0

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
            router=_choice("ROUTER", ("affinity", "fifo")),
            router_min_dwell=_float("ROUTER_MIN_DWELL", 2.0),
            router_starvation=_float("ROUTER_STARVATION", 30.0),
            router_pin=_float("ROUTER_PIN", 60.0),
            router_interval=_float("ROUTER_INTERVAL", 0.5),
            router_switch_cost=_float("ROUTER_SWITCH_COST", 1.0),
            priority_aging=_float("PRIORITY_AGING", 60.0),
            batch_max=_int("BATCH_MAX", 4),
            s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            s3_region=os.environ.get("S3_REGION") or None,
            store_serve=_choice("STORE_SERVE", ("proxy", "redirect")),
            store_fsync=_bool("STORE_FSYNC", False),
            s3_presign_seconds=_presign_seconds(),
            max_json_bytes=_int("MAX_JSON_BYTES", 24 * 1024 * 1024),
            auth=_choice("AUTH", ("off", "keys")),
            key_rate=_positive("KEY_RATE", 10.0),
            key_burst=max(1, _int("KEY_BURST", 60)),
            key_jobs_max=_int("KEY_JOBS_MAX", 20),
            key_jobs_per_day=_int("KEY_JOBS_PER_DAY", 0),
        )


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name}={raw!r} is not a flag; set it to 1 or 0 (true/false) or unset it")


DEFAULT_SR_MODEL = ROOT / "workers" / "superres" / "weights" / "subpixel-x3.onnx"  # trained here: PROVENANCE.md


@dataclass(frozen=True)
class SuperResSettings:
    """Super-resolution settings, read by the API (limits) and the SR workers (engine, pool)."""

    enabled: bool
    engine: str
    model_path: Path
    input_size: int
    output_size: int
    max_pixels: int
    max_upload_bytes: int
    num_workers: int
    queue_max: int
    request_timeout: float

    @property
    def factor(self) -> int:
        """How much one pass enlarges each side."""
        return self.output_size // self.input_size

    @classmethod
    def from_env(cls) -> SuperResSettings:
        return cls(
            enabled=_flag("SR_ENABLED", True),
            engine=os.environ.get("SR_ENGINE") or "auto",
            model_path=Path(os.environ.get("SR_MODEL_PATH") or DEFAULT_SR_MODEL),
            input_size=_int("SR_INPUT_SIZE", 224),
            output_size=_int("SR_OUTPUT_SIZE", 672),
            max_pixels=_int("SR_MAX_PIXELS", 4096 * 4096),
            max_upload_bytes=_int("SR_MAX_UPLOAD_BYTES", 16 * 1024 * 1024),
            num_workers=_int("SR_NUM_WORKERS", 1),
            queue_max=_int("SR_QUEUE_MAX", 20),
            request_timeout=_float("SR_REQUEST_TIMEOUT", 120.0),
        )
