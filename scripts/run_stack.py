"""`make run`: the broker (unless REDIS_URL names one), the API, a worker, a superres worker
(unless SR_ENABLED=0) and Flower, from the Procfile, under scripts/supervisor.py.

Before anything starts it checks that the ports it will listen on are free, and stops
with one line naming the busy port and the variable that moves it.  A program that dies
is restarted (with backoff) while the rest keep running; Ctrl-C stops the API, the
workers and Flower, then Redis.  Flower asks for a login: ``FLOWER_BASIC_AUTH``
(``user:password``), or ``dreamlab`` with a password made once and kept in
``.state/flower.password``.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path

from scripts.supervisor import Program, Supervisor

ROOT = Path(__file__).resolve().parent.parent
FLOWER_USER = "dreamlab"


def secret(state: Path, name: str) -> str:
    """A password made once per checkout and kept in .state/<name> (mode 0600)."""
    path = state / name
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def procfile(path: Path) -> dict[str, str]:
    """The Procfile's commands by name."""
    entries = (line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    return {name.strip(): command.strip() for name, command in entries if not name.startswith("#")}


def busy(port: int) -> bool:
    """Whether a server could not listen on ``port`` on loopback (as the servers bind: with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(ports: dict[str, str]) -> str | None:
    """The line to stop with when a port (variable -> port) is taken or invalid; None when all are free."""
    for variable, value in ports.items():
        if not value.isdigit() or not 0 < int(value) < 65536:
            return f"dreamlab: {variable}={value!r} is not a port number"
        if busy(int(value)):
            return f"dreamlab: port {value} is in use (set {variable} to another port)"
    return None


def stack_env(env: dict[str, str]) -> dict[str, str]:
    """The environment every program gets: ports, the broker URL, Flower's login."""
    env = dict(env)
    state = Path(env.setdefault("STATE_DIR", str(ROOT / ".state")))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["API_PORT"] = env.get("API_PORT") or env.get("PORT") or "4200"
    env.setdefault("FLOWER_PORT", "5555")
    if not env.get("REDIS_URL"):
        port = env.setdefault("REDIS_PORT", "6380")
        password = env.setdefault("REDIS_PASSWORD", secret(state, "redis.password"))
        env["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
    if not env.get("FLOWER_BASIC_AUTH"):
        env["FLOWER_BASIC_AUTH"] = f"{FLOWER_USER}:{secret(state, 'flower.password')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def programs(env: dict[str, str], commands: dict[str, str], local_broker: bool) -> list[Program]:
    """What to run: the local broker first (tier 0, stopped last), then the rest."""
    names = ["web", "worker", "flower"]
    if env.get("SR_ENABLED", "1").strip().lower() not in ("0", "false", "no", "off"):
        names.insert(2, "superres")
    if env.get("WEBHOOK_SECRET"):  # the sender refuses to start without it
        names.insert(-1, "webhooks")
    chosen = [Program(name, commands[name]) for name in names]
    if local_broker:
        chosen.insert(0, Program("broker", commands["broker"], tier=0, ready_port=int(env["REDIS_PORT"])))
    return chosen


def main() -> int:
    local_broker = not os.environ.get("REDIS_URL")
    env = stack_env(dict(os.environ))
    ports = {"API_PORT": env["API_PORT"], "FLOWER_PORT": env["FLOWER_PORT"]}
    if local_broker:
        ports["REDIS_PORT"] = env["REDIS_PORT"]
    refusal = check_ports(ports)
    if refusal:
        print(refusal, file=sys.stderr)
        return 1
    login = env["FLOWER_BASIC_AUTH"]
    print(
        f"dreamlab: API on http://127.0.0.1:{env['API_PORT']}, "
        f"Flower on http://127.0.0.1:{env['FLOWER_PORT']} (login {login}), "
        f"Celery's CLI: make celery ARGS='inspect active'",
        flush=True,
    )
    supervisor = Supervisor(programs(env, procfile(ROOT / "Procfile"), local_broker), env, str(ROOT))
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
