"""A worker host cut off mid-job: the job completes once on the other host, and the cut-off worker
rejoins without completing it again.  Heavy: run this file alone."""

from __future__ import annotations

import time
from datetime import datetime

from jobs.keys import job_key
from tests.client import poll, submit
from tests.fleet.harness import TIMINGS
from tests.processes import wait_for


def test_a_partitioned_workers_job_completes_once_elsewhere_and_it_rejoins(fleet):
    job = submit(fleet.api, mode="slow", prompt="cut off mid-job", seed=11)
    wait_for(lambda: (fleet.admin.hget(job_key(job["id"]), "progress") or b"null") != b"null", 240, "the job to run")
    cut = fleet.ran_on(job["id"])
    other = "npu" if cut == "gpu" else "gpu"
    fleet.net.cut(fleet.hosts[cut])
    began, cut_at = time.monotonic(), time.time()
    try:
        record = poll(fleet.api, job["id"], timeout=300)
        took = time.monotonic() - began
    finally:
        fleet.net.restore(fleet.hosts[cut])
    assert record["status"] == "succeeded", record
    assert fleet.ran_on(job["id"]) == other
    started = datetime.fromisoformat(fleet.admin.hget(job_key(job["id"]), "started_at").decode()).timestamp()
    print(
        f"partition: {other} took the job over {started - cut_at:.1f}s after the cut and ended it {took:.1f}s after it"
        f" (VISIBILITY_TIMEOUT={TIMINGS['VISIBILITY_TIMEOUT']}, LEASE_TTL={TIMINGS['LEASE_TTL']})"
    )

    restored = time.time()
    wait_for(lambda: float((fleet.heartbeat(cut) or {}).get("updated_at", 0)) > restored, 120, f"{cut} to rejoin")
    # The cut-off worker's copy ends one of two ways, each a terminal write its lost lease refuses: its
    # progress write times out and the job fails there, or it runs to the end and finds the lease gone.
    ends = (f"job {job['id']}: mode 'slow' failed", f"job {job['id']}: finished but lost its lease")
    wait_for(lambda: any(end in fleet.log(f"worker-{cut}") for end in ends), 120, "the cut-off worker's copy to end")
    stored = fleet.admin.hgetall(job_key(job["id"]))
    assert stored[b"status"] == b"succeeded" and stored[b"completions"] == b"1", stored
    assert fleet.ran_on(job["id"]) == other

    after = poll(fleet.api, submit(fleet.api, prompt="the fleet after the partition", seed=12)["id"], 240)
    assert after["status"] == "succeeded", after
