"""Memory figures a worker reports and checks before loading: host, process, model files."""

from __future__ import annotations

import os
from pathlib import Path

from modes.safetensors_header import parameter_count

MIB = 1024 * 1024


def _meminfo() -> dict[str, int]:
    values = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0]) * 1024
    return values


def host_memory() -> tuple[int, int]:
    """(total, available) bytes of host RAM."""
    info = _meminfo()
    return info["MemTotal"], info["MemAvailable"]


def process_rss() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def file_mappings() -> list[tuple[int, int]]:
    """Address ranges (start, end) of this process's file-backed memory mappings, sorted."""
    ranges = []
    with open("/proc/self/maps") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 6 and fields[4] != "0" and fields[5].startswith("/"):
                start, end = fields[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return sorted(ranges)


def model_file_parameters(path: Path) -> int:
    """Numbers held by a model's safetensors files (a diffusers folder or one file), read from headers."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*/*.safetensors"))
    return sum(parameter_count(f) for f in files)


def memory_limit() -> int | None:
    """MEMORY_LIMIT_MB, the most this worker may use for models, when set."""
    raw = os.environ.get("MEMORY_LIMIT_MB", "").strip()
    return int(raw) * MIB if raw else None
