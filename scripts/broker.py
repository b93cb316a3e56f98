"""Run the local Redis broker for `make run`: loopback only, password, AOF, data under .state/.

Every file it writes is private (0600, folders 0700): the append-only file holds every prompt.

Reads REDIS_PORT, REDIS_PASSWORD and STATE_DIR, which scripts/run_stack.py sets.
"""

from __future__ import annotations

import os
from pathlib import Path

from scripts.redis_binary import find_redis_server


def main() -> None:
    os.umask(0o077)  # inherited by redis-server, which creates the append-only files
    data = Path(os.environ["STATE_DIR"]) / "redis"
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    conf = data / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {os.environ['REDIS_PORT']}",
                f"requirepass {os.environ['REDIS_PASSWORD']}",
                f"dir {data.resolve()}",
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "",
            ]
        )
    )
    conf.chmod(0o600)
    binary = find_redis_server()
    os.execv(binary, [binary, str(conf)])


if __name__ == "__main__":
    main()
