"""make run's Redis (scripts/broker.py): its append-only file holds every prompt, so it is private."""

from __future__ import annotations

import secrets
import stat
import subprocess
import sys

import redis

from tests.processes import ROOT, free_port, wait_for


def test_the_append_only_file_is_readable_by_the_service_user_alone(tmp_path):
    port, password = free_port(), secrets.token_hex(8)
    env = {"STATE_DIR": str(tmp_path), "REDIS_PORT": str(port), "REDIS_PASSWORD": password, "PATH": "/usr/bin:/bin"}
    broker = subprocess.Popen([sys.executable, "-m", "scripts.broker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password=password)
        wait_for(lambda: _answers(client), 30, "the broker to answer PING")
        client.hset("dl:job:x", "params", '{"prompt": "private"}')
        client.execute_command("BGREWRITEAOF")
        wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, 30, "the AOF rewrite")
        written = [path for path in (tmp_path / "redis").rglob("*")]
        assert any("appendonly" in path.name for path in written), written
        for path in [tmp_path / "redis", *written]:
            private = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == private, path
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def _answers(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
