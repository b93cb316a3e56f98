"""`make run`'s launcher (scripts/run_stack.py) as a user meets it, black box: real Redis, API, worker, Flower.

With the stack up and a job running: Flower, logged in, lists the busy worker online and the
task started with the job's id; Celery's CLI lists it; without credentials Flower answers 401;
/metrics then counts the job under its mode; a failed job and a canceled one show in Flower
as FAILURE and REVOKED.
A SIGKILLed worker is back while the API keeps answering, and its job completes once.
Ctrl-C stops the API, the worker and Flower, then Redis, without a traceback.  A busy port
stops the launcher before anything starts, in one line naming it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from jobs.keys import WORKERS_PATTERN
from jobs.records import JobRecords
from tests.client import poll, submit
from tests.processes import ROOT, free_port, stack_env, wait_for
from tests.test_cancel_e2e import start_long_job, stop
from tests.test_delivery import wait_running
from tests.test_metrics import scrape, value


@dataclass
class Launched:
    process: subprocess.Popen
    env: dict[str, str]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['API_PORT']}"

    @property
    def flower(self) -> str:
        return f"http://127.0.0.1:{self.env['FLOWER_PORT']}"

    @property
    def login(self) -> tuple[str, str]:
        password = (Path(self.env["STATE_DIR"]) / "flower.password").read_text().strip()
        return ("dreamlab", password)

    def redis(self) -> redis.Redis:
        password = (Path(self.env["STATE_DIR"]) / "redis.password").read_text().strip()
        return redis.Redis(port=int(self.env["REDIS_PORT"]), password=password)

    def workers(self) -> dict[str, dict[str, str]]:
        client = self.redis()
        found = {}
        for key in client.scan_iter(WORKERS_PATTERN):
            beat = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
            if beat.get("backend") == "torch":
                found[beat["name"]] = beat
        return found

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


def launcher_env(tmp: Path, modes_file: Path, **overrides: str) -> dict[str, str]:
    env = stack_env("", modes_file, tmp / "store", **overrides)
    del env["REDIS_URL"]
    env.update(
        STATE_DIR=str(tmp / "state"),
        API_PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
        REDIS_PORT=str(free_port()),
        SR_ENABLED="0",
    )
    env.pop("FLOWER_BASIC_AUTH", None)
    env.pop("PORT", None)
    return env


@pytest.fixture(scope="module")
def launched(tmp_path_factory, modes_file):
    tmp = tmp_path_factory.mktemp("launcher")
    env = launcher_env(
        tmp, modes_file, VISIBILITY_TIMEOUT="4", LEASE_TTL="3", CUSTOM_HANDLER_MODULES="tests.handlers.sample"
    )
    log = tmp / "launcher.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_stack"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Launched(process, env, log)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the launcher exited:\n{stack.output()[-3000:]}")
        try:
            api = requests.get(f"{stack.base}/healthz", timeout=5).status_code == 200
            flower = requests.get(f"{stack.flower}/healthcheck", timeout=5).status_code == 200
        except requests.RequestException:
            return False
        return api and flower and bool(stack.workers())

    try:
        wait_for(up, 300, "the launcher's API, Flower and worker")
        yield stack
    finally:
        stack.stop()


def test_flower_logged_in_sees_the_busy_worker_and_its_task_and_refuses_strangers(launched):
    job = submit(launched.base, mode="slow", prompt="watched in Flower", num_inference_steps=50, seed=2)
    records = JobRecords(launched.redis(), ttl=3600)
    wait_running(records, job["id"], min_step=1)
    (worker,) = launched.workers()

    def online() -> dict:
        url = f"{launched.flower}/api/workers"
        response = requests.get(url, params={"refresh": 1}, auth=launched.login, timeout=30)
        return response.ok and worker in response.json() and response.json()

    wait_for(online, 60, "Flower to list the busy worker")
    status = requests.get(f"{launched.flower}/api/workers", params={"status": 1}, auth=launched.login, timeout=30)
    assert status.json()[worker] is True

    def started() -> dict:
        response = requests.get(f"{launched.flower}/api/task/info/{job['id']}", auth=launched.login, timeout=30)
        return response.ok and response.json()["state"] == "STARTED" and response.json()

    task = wait_for(started, 60, "Flower to show the job's task started")
    assert task["worker"] == worker
    assert job["id"] in task["args"]

    cli = subprocess.run(
        [sys.executable, "-m", "scripts.celery_cli", "inspect", "active", "--timeout=5"],
        cwd=ROOT,
        env=launched.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job["id"] in cli.stdout, cli.stdout + cli.stderr

    for path in ("/", "/api/workers", "/api/tasks"):
        assert requests.get(f"{launched.flower}{path}", timeout=30).status_code == 401, path
    broker = requests.get(f"{launched.flower}/broker", auth=launched.login, timeout=30).text
    assert all(queue in broker for queue in ("gen.torch.demo", "gen.torch.slow", "custom")), broker
    assert "flower_events_total" in requests.get(f"{launched.flower}/metrics", timeout=30).text
    assert poll(launched.base, job["id"], timeout=300)["status"] == "succeeded"
    samples = scrape(launched.base)
    assert value(samples, "dreamlab_jobs_ended_total", kind="generate", mode="slow", status="succeeded") == 1


def test_flower_shows_a_failed_job_as_failure_and_a_canceled_one_as_revoked(launched):
    bad = requests.post(f"{launched.base}/api/custom", json={"handler": "add", "args": {"numbers": "x"}}, timeout=30)
    failed = poll(launched.base, bad.json()["id"])
    assert failed["status"] == "failed"
    long = start_long_job(launched.base, "canceled under Flower's eye")
    assert stop(launched.base, long["id"])["status"] == "canceled"

    def flower_state(task_id: str, state: str):
        def reached() -> dict:
            response = requests.get(f"{launched.flower}/api/task/info/{task_id}", auth=launched.login, timeout=30)
            return response.ok and response.json()["state"] == state and response.json()

        return wait_for(reached, 60, f"Flower to show task {task_id} {state}")

    assert failed["error"]["message"] in flower_state(failed["id"], "FAILURE")["exception"]
    flower_state(long["id"], "REVOKED")


def test_a_killed_worker_is_restarted_its_job_completes_once_and_the_api_keeps_answering(launched):
    records = JobRecords(launched.redis(), ttl=3600)
    job = submit(launched.base, mode="slow", prompt="survives its worker", num_inference_steps=60, seed=4)
    wait_running(records, job["id"])
    (first,) = launched.workers().values()
    failures, done = [], threading.Event()

    def watch_api() -> None:
        while not done.wait(0.2):
            try:
                code = requests.get(f"{launched.base}/healthz", timeout=10).status_code
            except requests.RequestException as exc:
                code = repr(exc)
            if code != 200:
                failures.append(code)

    watcher = threading.Thread(target=watch_api, daemon=True)
    watcher.start()
    os.kill(int(first["pid"]), signal.SIGKILL)
    restarted = wait_for(
        lambda: [w for w in launched.workers().values() if w["pid"] != first["pid"]], 180, "a restarted worker"
    )
    assert "worker was killed by SIGKILL; restarting it" in launched.output()

    record = poll(launched.base, job["id"], timeout=300)
    done.set()
    watcher.join()
    assert record["status"] == "succeeded", record
    stored = records.get(job["id"])
    assert (stored["attempts"], stored["completions"]) == (2, 1)
    assert stored["worker"] == restarted[0]["name"]
    assert failures == []


def test_ctrl_c_stops_the_api_and_workers_then_redis_without_a_traceback(launched):
    assert launched.stop() == 0
    output = launched.output()
    first, last = output.index("launcher | stopping web, worker, flower"), output.index("launcher | stopping broker")
    assert first < last
    assert "Traceback" not in output[first:], output[first:]  # earlier ones belong to the failed test job
    assert output.rstrip().endswith("launcher | stopped")


def test_a_busy_api_port_stops_the_launcher_in_one_line(tmp_path, modes_file):
    env = launcher_env(tmp_path, modes_file)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["API_PORT"] = str(port)
        ended = subprocess.run(
            [sys.executable, "-m", "scripts.run_stack"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert ended.returncode != 0
    assert ended.stdout == ""
    assert ended.stderr.splitlines() == [f"dreamlab: port {port} is in use (set API_PORT to another port)"]
    assert not (tmp_path / "state" / "redis").exists()
