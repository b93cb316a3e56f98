"""Intake: how many ``POST /api/jobs`` submits a second the API takes, as ``make run`` starts it
(the Procfile's gunicorn line, a redis-server broker with the append-only file as scripts/broker.py
keeps it), against a raw Flask route under the same gunicorn that validates nothing and sends the
same Celery message with a producer-only client (bench/intake_raw.py).  With ``--before DIR``, the API
of another checkout (the code before a change) is measured in the same run, rounds interleaved.

Each side has its own redis-server; ``--clients`` threads post keep-alive requests for ``--seconds``
a round; the rate of a side is its median over ``--rounds``.  Targets: ours >= 0.8x raw, and at
most 10 % slower than before.

    python -m bench.intake [--seconds 8] [--rounds 3] [--clients 8] [--before /tmp/dreamlab-before]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.overhead import TINY_MODEL, cpu_seconds, family, write_modes
from scripts.redis_binary import find_redis_server
from tests.processes import ROOT, RedisServer, free_port, stack_env, wait_for

BODY = {"prompt": "a lighthouse at dusk, oil painting", "size": "64x64", "num_inference_steps": 4, "seed": 7}
GUNICORN = ["-m", "gunicorn", "-k", "gthread", "--threads", "16", "-w", "2"]  # the Procfile's web line


def start_broker(workdir: Path) -> RedisServer:
    """A redis-server configured as scripts/broker.py configures make run's."""
    port = free_port()
    workdir.mkdir(parents=True)
    argv = [find_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--requirepass", "bench"]
    argv += ["--dir", str(workdir), "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    server = RedisServer(f"redis://:bench@127.0.0.1:{port}/0", None, argv)
    server.start()
    return server


def start_side(name: str, workdir: Path, app: str, code: Path) -> tuple[str, RedisServer, subprocess.Popen]:
    """gunicorn serving ``app`` from the checkout ``code`` (its own redis-server); its base URL."""
    broker = start_broker(workdir / f"redis-{name}")
    workdir.mkdir(parents=True, exist_ok=True)
    env = stack_env(broker.url, write_modes(workdir, TINY_MODEL), workdir / "store", QUEUE_MAX="1000000000")
    env["PYTHONPATH"] = f"{code}:{env.get('PYTHONPATH', '')}"
    port = free_port()
    log = workdir / f"api-{name}.log"
    # Run from the checkout: python -m puts the working directory first on sys.path (and gunicorn reads its conf there).
    argv = [sys.executable, *GUNICORN, "-b", f"127.0.0.1:{port}", app]
    process = subprocess.Popen(argv, cwd=code, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited:\n{log.read_text()[-3000:]}")
        try:
            return requests.post(f"{base}/api/jobs", json=BODY, timeout=5).status_code == 202
        except requests.RequestException:
            return False

    wait_for(answers, 60, f"the {name} side to accept a job")
    return base, broker, process


def revision(code: Path) -> str:
    """The checkout's commit, and whether its files differ from it."""
    git = ["git", "-C", str(code)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return commit + (" with uncommitted changes" if dirty.stdout.strip() else "")


def measure(base: str, seconds: float, clients: int, server: int) -> tuple[float, float]:
    """Accepted submits a second over ``clients`` keep-alive connections, and the CPU seconds the server
    (gunicorn ``server`` and its workers) spent per submit: unlike the rate, barely moved by other load
    on the machine.  Any answer but 202 stops the bench."""
    address = urlsplit(base)
    body = json.dumps(BODY).encode()
    counts = [0] * clients
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while time.perf_counter() < deadline and not failures:
            connection.request("POST", "/api/jobs", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 202:
                failures.append(f"{response.status} {answer[:200]!r}")
            counts[i] += 1
        connection.close()

    began, cpu = time.perf_counter(), cpu_seconds(family(server))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{base}: {failures[0]}")
    elapsed, cpu = time.perf_counter() - began, cpu_seconds(family(server)) - cpu
    return sum(counts) / elapsed, cpu / sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--before", type=Path, help="a checkout of the code before the change (its API is measured)")
    args = parser.parse_args()
    command = f"python -m bench.intake --seconds {args.seconds:g} --rounds {args.rounds} --clients {args.clients}"
    print("command:", command + (f" --before {args.before}" if args.before else ""))
    sides = {"raw": ("bench.intake_raw:app", ROOT), "ours": ("api:create_app()", ROOT)}
    if args.before:
        sides["before"] = ("api:create_app()", args.before.resolve())
    for name, (app, code) in sides.items():
        print(f"   {name:6} {app} from {code} at {revision(code)}")
    started = []
    with tempfile.TemporaryDirectory(prefix="dreamlab-intake-") as tmp:
        try:
            servers = {}
            for name, (app, code) in sides.items():
                base, broker, process = start_side(name, Path(tmp) / name, app, code)
                servers[name] = (base, process.pid)
                started.append((broker, process))
            rates: dict[str, list[float]] = {name: [] for name in sides}
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            for name in sides:
                measure(servers[name][0], 1.0, args.clients, servers[name][1])  # warm every gunicorn thread
            for _ in range(args.rounds):
                for name in sides:
                    rate, per_submit = measure(servers[name][0], args.seconds, args.clients, servers[name][1])
                    rates[name].append(rate)
                    cpu[name].append(per_submit)
        finally:
            for broker, process in started:
                process.terminate()
                process.wait(timeout=30)
                broker.stop()
    report(rates, cpu, args)


def report(rates: dict[str, list[float]], cpu: dict[str, list[float]], args: argparse.Namespace) -> None:
    rate = {name: statistics.median(values) for name, values in rates.items()}
    # Submits per server CPU second: the rate a side would reach with the cores to itself.
    capacity = {name: 1 / statistics.median(values) for name, values in cpu.items()}
    print(f"POST /api/jobs, {args.clients} clients, {args.rounds} rounds of {args.seconds:g} s per side (median)")
    for name, values in rates.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(
            f"   {name:6} {rate[name]:7.1f} submits/s (rounds: {rounds});"
            f" server CPU {1e3 / capacity[name]:.2f} ms a submit = {capacity[name]:.0f} submits per CPU second"
        )
    pairs = [("ours", "raw", "target >= 0.8x")]
    if "before" in rate:
        pairs += [("before", "raw", ""), ("ours", "before", "target >= 0.9x: at most 10 % slower")]
    for a, b, target in pairs:
        print(
            f"   {a} / {b}: {rate[a] / rate[b]:.2f}x submits/s, {capacity[a] / capacity[b]:.2f}x submits per CPU second"
            + (f"  ({target})" if target else "")
        )


if __name__ == "__main__":
    main()
