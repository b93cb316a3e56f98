"""Real processes for end-to-end tests: redis-server, Celery workers, the API under gunicorn."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from jobs.keys import WORKERS_PATTERN
from scripts.redis_binary import find_redis_server

ROOT = Path(__file__).resolve().parent.parent
# Its sitecustomize.py refuses network access beyond loopback in every process the tests start.
OFFLINE_GUARD = Path(__file__).resolve().parent / "offline_guard"


def guarded_pythonpath() -> str:
    """PYTHONPATH with the offline guard first (once), for a child process's environment."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(OFFLINE_GUARD)]
    return os.pathsep.join([str(OFFLINE_GUARD), *rest])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


API_WORKERS = 2  # gunicorn worker processes of a test API


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen | None  # None until start()
    argv: list[str]

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def start(self) -> None:
        """Start the server (again) on the same port and password; return once it answers PING."""
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)

        def ready() -> bool:
            try:
                return self.client().ping()
            except redis.ConnectionError:
                return False

        wait_for(ready, 10, "redis-server to answer PING")

    def restart(self) -> None:
        """Stop (a clean shutdown: it writes any append-only file) and start again on the same port."""
        self.stop()
        self.start()


def start_redis(workdir: Path, aof: bool = False) -> RedisServer:
    """A redis-server on a free loopback port with a password; ``aof``: keep an append-only file, fsynced
    every write, so that a restart (RedisServer.restart) keeps every acknowledged write."""
    port, password = free_port(), secrets.token_hex(8)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_redis_server(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--requirepass",
        password,
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
        "--appendfsync",
        "always",
        "--dir",
        str(workdir),
    ]
    server = RedisServer(f"redis://:{password}@127.0.0.1:{port}/0", None, argv)
    server.start()
    return server


# moto's server accepts any credentials; boto3 still needs some to sign with, and a region.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class MotoServer:
    """moto's S3 API on loopback: a real S3 endpoint for the S3 store."""

    url: str
    process: subprocess.Popen | None  # None until start()

    def client(self):
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client("s3", endpoint_url=self.url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_moto(logs: Path, extra_env: dict[str, str] | None = None) -> MotoServer:
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "moto.log", "wb")
    env = {**os.environ, **FAKE_AWS_ENV, **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = MotoServer(f"http://127.0.0.1:{port}", process)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"moto server exited early:\n{Path(log.name).read_text()[-3000:]}")
        try:
            return requests.get(f"{server.url}/moto-api/", timeout=5).ok
        except requests.RequestException:
            return False

    wait_for(ready, 60, "the moto server to answer")
    return server


@dataclass
class Stack:
    """Environment shared by the processes of one test deployment."""

    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}-{len(self.processes)}.log", "wb")
        env = {**self.env, **(extra_env or {})}
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        process.log_path = Path(log.name)
        self.processes.append(process)
        return process

    def start_worker(self, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        process = self.spawn("worker", [sys.executable, "-m", "tasks.worker"], extra_env)
        client = redis.Redis.from_url(self.env["REDIS_URL"])

        def registered() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{process.log_path.read_text()[-3000:]}")
            return any(client.hget(k, "pid") == str(process.pid).encode() for k in client.scan_iter(WORKERS_PATTERN))

        wait_for(registered, 240, "the worker's heartbeat")
        return process

    def spawn_api(self, bind: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        """The API under gunicorn as ``make run`` starts it, listening on ``bind`` (host:port)."""
        argv = [sys.executable, "-m", "gunicorn", "-w", str(API_WORKERS), "-b", bind]  # gthread: gunicorn.conf.py
        return self.spawn("api", [*argv, "api:create_app()"], extra_env)

    def start_api(self, extra_env: dict[str, str] | None = None, host: str = "127.0.0.1") -> str:
        """Start the API on ``host`` and a free port; its loopback URL once /healthz answers."""
        port = free_port()
        process = self.spawn_api(f"{host}:{port}", extra_env)
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"API exited early:\n{process.log_path.read_text()[-3000:]}")
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, 30, "the API's /healthz")
        return base

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def own_stack(folder: Path, modes_file: Path, **overrides: str) -> Iterator[Stack]:
    """A Stack on a Redis of its own under ``folder`` (logs in ``folder/logs``); both stopped after."""
    server = start_redis(folder / "redis")
    (folder / "logs").mkdir()
    stack = Stack(stack_env(server.url, modes_file, folder / "store", **overrides), folder / "logs")
    try:
        yield stack
    finally:
        stack.stop()
        server.stop()


def stack_env(redis_url: str, modes_file: Path, store: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "VISIBILITY_", "LEASE_"))}
    env.update(
        REDIS_URL=redis_url,
        MODES_FILE=str(modes_file),
        STORE_URL=str(store),
        PYTHONUNBUFFERED="1",
        # Test stacks run several torch processes on a couple of cores; more OpenMP threads than
        # cores makes each of them crawl (measured: 15x slower under load). Tests are not benchmarks.
        OMP_NUM_THREADS="1",
        # The router's defaults suit real model loads; tests switch tiny models often.
        ROUTER_MIN_DWELL="0.2",
        ROUTER_INTERVAL="0.2",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=guarded_pythonpath(),
    )
    env.update(overrides)
    return env
