"""A Dream Lab fleet across hosts (tests/fleet/netns.py): Redis with TLS and ACL users, moto's S3 server,
the API, and worker hosts that each keep the models in a folder of their own.

Every process runs in its host's namespace with the settings that host would have in
production; worker hosts get only the worker settings (README "Run a fleet").  The
commands are the ones docker/compose.yaml runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import redis
import requests
import yaml

from jobs.keys import WORKERS_PATTERN, job_key
from tests.conftest import LORA_ROOT, MODEL_ROOT, TINY
from tests.fleet.certs import make_certs
from tests.fleet.netns import Host, Network
from tests.processes import FAKE_AWS_ENV, ROOT, guarded_pythonpath, wait_for

REDIS_SERVER = "/usr/bin/redis-server"  # Debian's, built with TLS (the bundled one is not)
REDIS_PORT, STORE_PORT, API_PORT = 6379, 5000, 8000
BUCKET = "fleet"
# Short enough that a partition test ends in seconds: a cut-off worker's job is delivered again
# VISIBILITY_TIMEOUT after its last renewal and claimed once its lease (LEASE_TTL) ran out.
TIMINGS = {"VISIBILITY_TIMEOUT": "8", "LEASE_TTL": "4", "ROUTER_MIN_DWELL": "0.2", "ROUTER_INTERVAL": "0.2"}
# Each role's ACL user: every command but the dangerous ones (FLUSHALL, CONFIG, DEBUG, KEYS, ...).
ROLE_RULES = ["on", "~*", "&*", "+@all", "-@dangerous"]

FLEET_MODES = {
    "default_mode": "demo",
    "model_root": "models",  # on the API host: a folder that does not even exist there
    "modes": {
        "demo": {"model": TINY, "default_size": "64x64", "default_steps": 4, "default_guidance": 1.0,
                 "scheduler": "lcm"},
        "styled": {"model": TINY, "default_size": "64x64", "default_steps": 4, "default_guidance": 1.0,
                   "scheduler": "lcm", "loras": ["style.safetensors"]},
        # Long enough to cut a host's link while it runs.
        "slow": {"model": TINY, "default_size": "256x256", "default_steps": 100, "max_size": 256},
        # Its model is on the gpu host only.
        "gpu-only": {"model": "tiny-sd15-gpu", "default_size": "64x64", "default_steps": 4,
                     "default_guidance": 1.0, "scheduler": "lcm"},
    },
}  # fmt: skip


@dataclass
class Fleet:
    net: Network
    workdir: Path
    passwords: dict[str, str] = field(default_factory=lambda: {r: secrets.token_hex(8) for r in ("api", "worker")})
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)

    # -- addresses and settings

    @property
    def certs(self) -> Path:
        return self.workdir / "redis" / "tls"

    def redis_url(self, role: str, password: str | None = None, tls: bool = True) -> str:
        scheme, query = (
            ("rediss", f"?ssl_cert_reqs=required&ssl_ca_certs={self.certs / 'ca.crt'}") if tls else ("redis", "")
        )
        secret = self.passwords[role] if password is None else password
        return f"{scheme}://{role}:{secret}@{self.hosts['redis'].address}:{REDIS_PORT}/0{query}"

    @cached_property
    def admin(self) -> redis.Redis:
        """The test's own view of Redis (the default user), over TLS from the client port."""
        return redis.Redis.from_url(self.redis_url("default", self.passwords["default"]))

    @property
    def api(self) -> str:
        return f"http://{self.hosts['api'].address}:{API_PORT}"

    @property
    def store(self) -> str:
        return f"http://{self.hosts['store'].address}:{STORE_PORT}"

    def s3(self):
        import boto3

        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        return session.client("s3", endpoint_url=self.store, region_name="us-east-1")

    def base_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
        return {
            **keep,
            "PYTHONPATH": guarded_pythonpath(),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OFFLINE_GUARD_ALLOW": self.net.prefix,
        }

    def worker_env(self, root: Path, **overrides: str) -> dict[str, str]:
        """A worker host's settings, and only those (README "Run a fleet")."""
        return {
            **self.base_env(),
            **FAKE_AWS_ENV,
            **TIMINGS,
            "REDIS_URL": self.redis_url("worker"),
            "STORE_URL": f"s3://{BUCKET}/results",
            "S3_ENDPOINT_URL": self.store,
            "MODEL_ROOT": str(root),
            "MODES_FILE": str(root.parent / "no-modes.yaml"),  # none on a worker host
            **overrides,
        }

    # -- processes

    def spawn(self, host: str, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.workdir / "logs" / f"{name}.log", "ab")
        process = subprocess.Popen(
            self.hosts[host].command(argv), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        process.log_path = Path(log.name)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return self.processes[name].log_path.read_text(errors="replace")

    def stop(self, name: str, timeout: float = 20) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        """Workers first, Redis last: a worker's shutdown still writes to Redis."""
        for name in reversed(list(self.processes)):
            self.stop(name)

    def start_redis(self) -> None:
        data = self.workdir / "redis"
        certs = make_certs(self.certs, self.hosts["redis"].address)
        self.passwords["default"] = secrets.token_hex(8)
        argv = [
            REDIS_SERVER,
            "--bind", self.hosts["redis"].address,
            "--port", "0",
            "--tls-port", str(REDIS_PORT),
            "--tls-cert-file", str(certs["cert"]),
            "--tls-key-file", str(certs["key"]),
            "--tls-ca-cert-file", str(certs["ca"]),
            "--tls-auth-clients", "no",
            "--requirepass", self.passwords["default"],
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(data),
        ]  # fmt: skip
        for role in ("api", "worker"):
            argv += ["--user", role, *ROLE_RULES, f">{self.passwords[role]}"]
        self.redis_argv = argv
        self.restart_redis(stop=False)

    def restart_redis(self, stop: bool = True, kill: bool = False) -> None:
        """Start the Redis host's server (again: after a clean shutdown, or after SIGKILL with ``kill``)."""
        if kill:
            self.processes["redis"].kill()
            self.processes["redis"].wait()
        elif stop:
            self.stop("redis")
        self.spawn("redis", "redis", self.redis_argv, self.base_env())

        def ready() -> bool:
            try:
                return self.admin.ping()
            except redis.ConnectionError:
                return False

        wait_for(ready, 30, "the Redis host to answer over TLS")

    def start_store(self) -> None:
        argv = [sys.executable, "-m", "moto.server", "-H", self.hosts["store"].address, "-p", str(STORE_PORT)]
        self.spawn("store", "store", argv, {**self.base_env(), **FAKE_AWS_ENV})

        def ready() -> bool:
            try:
                return requests.get(f"{self.store}/moto-api/", timeout=5).ok
            except requests.RequestException:
                return False

        wait_for(ready, 60, "the store host's S3 API")
        self.s3().create_bucket(Bucket=BUCKET)

    def start_api(self, modes_file: Path) -> None:
        env = {
            **self.base_env(),
            **FAKE_AWS_ENV,
            **TIMINGS,
            "REDIS_URL": self.redis_url("api"),
            "STORE_URL": f"s3://{BUCKET}/results",
            "S3_ENDPOINT_URL": self.store,
            "MODES_FILE": str(modes_file),
            # The API listens on its host's private address, where AUTH must be said (api/exposure.py).
            "AUTH": "off",
        }
        bind = f"{self.hosts['api'].address}:{API_PORT}"
        argv = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "2", "-b", bind]
        self.spawn("api", "api", [*argv, "api:create_app()"], env)

        def healthy() -> bool:
            assert self.processes["api"].poll() is None, f"the API exited:\n{self.log('api')[-3000:]}"
            try:
                return requests.get(f"{self.api}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, 60, "the API host's /healthz")

    def start_worker(self, host: str, env: dict[str, str], wait: bool = True, name: str = "") -> subprocess.Popen:
        """Start ``host``'s worker (logged as ``name``, default worker-<host>); ``wait`` for its heartbeat."""
        name = name or f"worker-{host}"
        process = self.spawn(host, name, [sys.executable, "-m", "tasks.worker"], env)
        if wait:
            wait_for(lambda: self.heartbeat(host, name), 240, f"the {host} host's worker heartbeat")
        return process

    def ran_on(self, job_id: str) -> str:
        """The host whose worker ran the job (worker names end with @host)."""
        return self.admin.hget(job_key(job_id), "worker").decode().rsplit("@", 1)[1]

    def heartbeat(self, host: str, name: str = "") -> dict[str, str] | None:
        """The live heartbeat of the worker on ``host``, if any."""
        name = name or f"worker-{host}"
        assert self.processes[name].poll() is None, f"the {host} worker exited:\n{self.log(name)[-3000:]}"
        for key in self.admin.scan_iter(WORKERS_PATTERN):
            beat = {k.decode(): v.decode() for k, v in self.admin.hgetall(key).items()}
            if beat.get("host") == host:
                return beat
        return None


def model_root(folder: Path, extra: tuple[str, ...] = ()) -> Path:
    """A worker host's model root: the fleet's model and LoRA, hard-linked into a folder of its own
    (``extra``: more names for the same model, models only this host has)."""
    folder.mkdir(parents=True)
    for name in (TINY, *extra):
        shutil.copytree(MODEL_ROOT / TINY, folder / name, copy_function=os.link)
    os.link(LORA_ROOT / "style.safetensors", folder / "style.safetensors")
    return folder


def write_modes(path: Path, mutate=None) -> Path:
    data = yaml.safe_load(yaml.safe_dump(FLEET_MODES))
    if mutate:
        mutate(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path
