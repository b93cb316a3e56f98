"""The Redis host goes down hard and comes back (append-only file, fsynced every write) with jobs queued
and running: nothing is lost and nothing completes twice.  Heavy: run this file alone."""

from __future__ import annotations

from jobs.keys import job_key
from tests.client import poll, submit
from tests.processes import wait_for


def test_a_redis_crash_and_restart_loses_no_job_and_completes_none_twice(fleet):
    running = [submit(fleet.api, mode="slow", prompt=f"running through the restart {i}", seed=i) for i in range(2)]
    queued = [
        submit(fleet.api, mode="slow", prompt=f"queued through the restart {i}", seed=i, num_inference_steps=20)
        for i in range(3)
    ]
    jobs = [*running, *queued]

    def statuses() -> list[bytes]:
        return [fleet.admin.hget(job_key(job["id"]), "status") for job in jobs]

    wait_for(lambda: statuses().count(b"running") == 2, 240, "two jobs to run (one host may batch both)")
    assert b"queued" in statuses(), "nothing was queued when Redis went down: the test would prove nothing"

    fleet.restart_redis(kill=True)

    records = [poll(fleet.api, job["id"], timeout=300) for job in jobs]
    assert [r["status"] for r in records] == ["succeeded"] * len(jobs), records
    for job in jobs:
        assert fleet.admin.hget(job_key(job["id"]), "completions") == b"1", fleet.admin.hgetall(job_key(job["id"]))
    for host in ("gpu", "npu"):
        assert fleet.heartbeat(host), f"the {host} worker did not come back after the restart"
