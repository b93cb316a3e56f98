"""A fleet across hosts, for real: jobs on both worker hosts, each loading from its own model root,
results in the store host's bucket served by the API host.  Heavy: run this file alone."""

from __future__ import annotations

import json

import requests

from modes.registry import MODES_KEY
from tests.client import poll, result_bytes, submit
from tests.fleet.harness import BUCKET, model_root, write_modes
from tests.processes import wait_for


def test_jobs_run_on_both_worker_hosts_from_their_own_roots(fleet):
    jobs = [submit(fleet.api, mode=mode, prompt=f"{mode} {i}", seed=i) for i in range(3) for mode in ("demo", "styled")]
    records = [poll(fleet.api, job["id"], timeout=240) for job in jobs]
    assert [r["status"] for r in records] == ["succeeded"] * len(jobs), records
    hosts = {fleet.ran_on(r["id"]) for r in records}
    assert hosts == {"gpu", "npu"}, records

    for host, other in (("gpu", "npu"), ("npu", "gpu")):
        log = fleet.log(f"worker-{host}")
        assert f"loading {fleet.roots[host]}/tiny-sd15 " in log
        assert str(fleet.roots[other]) not in log
    for record in records:
        stored = fleet.s3().get_object(Bucket=BUCKET, Key=f"results/jobs/{record['id']}.png")["Body"].read()
        assert result_bytes(fleet.api, record["id"]) == stored


def test_a_host_without_a_modes_files_says_so_and_is_never_routed_its_jobs(fleet):
    missing = json.loads(fleet.heartbeat("npu")["missing"])
    assert list(missing) == ["gpu-only"] and "'tiny-sd15-gpu' is not under" in missing["gpu-only"]
    assert json.loads(fleet.heartbeat("gpu")["missing"]) == {}
    # With the gpu host gone, npu is the only idle worker and the jobs wait unserved: npu must
    # still not take them (it would fail them); they wait for gpu to come back.
    fleet.stop("worker-gpu")
    jobs = [submit(fleet.api, mode="gpu-only", prompt=f"gpu only {i}", seed=i) for i in range(3)]
    fleet.start_worker("gpu", fleet.worker_env(fleet.roots["gpu"]))
    for job in jobs:
        record = poll(fleet.api, job["id"], timeout=240)
        assert record["status"] == "succeeded", record
        assert fleet.ran_on(record["id"]) == "gpu"


def test_a_config_published_on_the_api_host_reaches_every_router_and_a_stale_worker_file_does_not(fleet, tmp_path):
    before = fleet.admin.hmget(MODES_KEY, "version", "digest")
    write_modes(fleet.workdir / "api" / "modes.yaml", add_extra_mode)
    reloaded = requests.post(f"{fleet.api}/api/modes/reload", timeout=30)
    assert reloaded.status_code == 200, reloaded.text
    version = int(before[0]) + 1
    for host in ("gpu", "npu"):
        wait_for(lambda h=host: fleet.heartbeat(h)["modes_version"] == str(version), 60, f"{host}'s router to follow")
    record = poll(fleet.api, submit(fleet.api, mode="extra", prompt="a mode added on the API host")["id"], 240)
    assert record["status"] == "succeeded", record

    published = fleet.admin.hmget(MODES_KEY, "version", "digest")
    stale = write_modes(tmp_path / "stale" / "modes.yaml")  # the config before the change, on a worker host
    env = fleet.worker_env(model_root(tmp_path / "stale" / "models"), MODES_FILE=str(stale))
    fleet.start_worker("extra", env, name="worker-stale")
    try:
        assert fleet.heartbeat("extra", "worker-stale")["modes_version"] == str(version)
        assert fleet.admin.hmget(MODES_KEY, "version", "digest") == published
        assert f"differs from the fleet's modes config (version {version}): the fleet's is used" in fleet.log(
            "worker-stale"
        )
    finally:
        fleet.stop("worker-stale")


def test_a_worker_without_tls_or_with_a_wrong_password_is_refused_and_the_fleet_runs_on(fleet, tmp_path):
    root = model_root(tmp_path / "models")
    refusals = {
        "plain": (fleet.redis_url("worker", tls=False), "use rediss:// where Redis requires TLS"),
        "wrong-password": (fleet.redis_url("worker", password="not-it"), "refused REDIS_URL's user or password"),
    }
    for name, (url, why) in refusals.items():
        process = fleet.start_worker("extra", fleet.worker_env(root, REDIS_URL=url), wait=False, name=name)
        assert process.wait(timeout=240) != 0
        address = fleet.hosts["redis"].address
        assert "worker cannot start:" in fleet.log(name) and f"{address}:6379" in fleet.log(name), fleet.log(name)
        assert why in fleet.log(name)
        assert "not-it" not in fleet.log(name) and fleet.passwords["worker"] not in fleet.log(name)

    assert fleet.heartbeat("gpu") and fleet.heartbeat("npu")
    record = poll(fleet.api, submit(fleet.api, prompt="after the refusals", seed=5)["id"], 240)
    assert record["status"] == "succeeded", record


def add_extra_mode(data: dict) -> None:
    data["modes"]["extra"] = {**data["modes"]["demo"], "default_steps": 3}
