"""`make run`: the broker (unless REDIS_URL names one), the API, a worker, a superres worker
(unless SR_ENABLED=0) and Flower, under honcho.

Logs come prefixed by process; Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def redis_password(state: Path) -> str:
    """A password made once per checkout and kept in .state/ (mode 0600)."""
    path = state / "redis.password"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> None:
    env = dict(os.environ)
    state = Path(env.setdefault("STATE_DIR", str(ROOT / ".state")))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # honcho gives every process its own PORT; the Procfile's web reads API_PORT first.
    env["API_PORT"] = env.get("PORT", "4200")
    processes = ["web", "worker", "flower"]
    if env.get("SR_ENABLED", "1").strip().lower() not in ("0", "false", "no", "off"):
        processes.insert(2, "superres")
    if not env.get("REDIS_URL"):
        port = env.setdefault("REDIS_PORT", "6380")
        password = env.setdefault("REDIS_PASSWORD", redis_password(state))
        env["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
        processes.insert(0, "broker")
    api, flower = env["API_PORT"], env.get("FLOWER_PORT", "5555")
    print(f"dreamlab: API on http://127.0.0.1:{api}, Flower on http://127.0.0.1:{flower}")
    honcho = [sys.executable, "-m", "honcho", "-d", str(ROOT), "-f", str(ROOT / "Procfile"), "start", *processes]
    os.execvpe(honcho[0], honcho, env)


if __name__ == "__main__":
    main()
