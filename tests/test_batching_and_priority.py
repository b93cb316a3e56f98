"""Batching and priority through real workers: compatible waiting jobs run as one pipeline
call, each with its own result; a higher priority goes first, and waiting ages so nothing
starves; a worker killed mid-batch loses no job."""

from __future__ import annotations

import io

import numpy as np
import redis
import requests
from PIL import Image

from jobs.records import JobRecords
from tests.client import poll, result_bytes, submit
from tests.processes import wait_for


def records_of(stack) -> JobRecords:
    return JobRecords(redis.Redis.from_url(stack.env["REDIS_URL"]), ttl=3600)


def pixels(base: str, job_id: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result_bytes(base, job_id))).convert("RGB"), dtype=np.int16)


def blocker(base: str, steps: int = 40, size: str = "128x128") -> dict:
    """A job that keeps the one worker busy while the test queues others behind it."""
    return submit(base, mode="slow", prompt="blocker", num_inference_steps=steps, size=size, seed=99)


def wait_running(records: JobRecords, job_id: str) -> None:
    wait_for(lambda: records.get(job_id)["status"] == "running", 120, f"job {job_id} to run")


def test_compatible_waiting_jobs_run_as_one_batch_each_with_its_own_result(make_stack):
    stack = make_stack(BATCH_MAX="4")
    stack.start_worker()
    base = stack.start_api()
    records = records_of(stack)
    first = blocker(base)
    wait_running(records, first["id"])
    jobs = [submit(base, mode="slow", prompt=f"cat {i}", num_inference_steps=3, size="64x64", seed=i) for i in range(5)]
    odd = submit(base, mode="slow", prompt="other size", num_inference_steps=3, size="96x64", seed=7)

    done = [poll(base, job["id"], timeout=240) for job in [first, *jobs, odd]]
    assert all(record["status"] == "succeeded" for record in done)
    batches = [record["result"].get("batch", 1) for record in done[1:6]]
    assert batches.count(4) == 4 and batches.count(1) == 1, batches
    assert done[6]["result"].get("batch", 1) == 1, "a job of another size is not batched"
    assert len({record["result"]["seed"] for record in done[1:6]}) == 5

    alone = submit(base, mode="slow", prompt="cat 0", num_inference_steps=3, size="64x64", seed=0)
    assert poll(base, alone["id"])["result"].get("batch", 1) == 1
    batched = next(job for job, record in zip(jobs, done[1:6], strict=True) if record["result"].get("batch") == 4)
    same = submit(
        base,
        mode="slow",
        prompt=records.get(batched["id"])["params"]["prompt"],
        num_inference_steps=3,
        size="64x64",
        seed=records.get(batched["id"])["params"]["seed"],
    )
    poll(base, same["id"])
    difference = np.abs(pixels(base, batched["id"]) - pixels(base, same["id"]))
    assert difference.max() <= 2, "a batched image is the image of the same job alone (float noise apart)"


def test_a_higher_priority_goes_first_and_waiting_ages(make_stack):
    """Priority p starts p x PRIORITY_AGING seconds ahead; a job that has waited longer than that
    head start goes first.  The jobs queue behind a blocker that runs until the test cancels it,
    and the old job's wait is written into its score, so the order owes nothing to timing."""
    stack = make_stack(BATCH_MAX="1", PRIORITY_AGING="1000")
    stack.start_worker()
    base = stack.start_api()
    records = records_of(stack)
    first = blocker(base, steps=150, size="512x512")
    wait_running(records, first["id"])
    old = submit(base, mode="slow", prompt="old", num_inference_steps=2, size="64x64", seed=1)
    normal = submit(base, mode="slow", prompt="normal", num_inference_steps=2, size="64x64", seed=2)
    urgent = submit(base, mode="slow", prompt="urgent", num_inference_steps=2, size="64x64", seed=3, priority=5)
    higher = submit(base, mode="slow", prompt="higher", num_inference_steps=2, size="64x64", seed=4, priority=1)
    # old has waited 1,500 s: more than priority 1's 1,000 s head start, less than priority 5's 5,000 s.
    waiting = records.get(old["id"])["waiting"]
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    assert client.zincrby(waiting, -1500, old["id"]) is not None
    assert records.get(first["id"])["status"] == "running", "the blocker runs until it is canceled"
    assert requests.delete(f"{base}/api/jobs/{first['id']}", timeout=30).status_code in (200, 202)

    assert poll(base, first["id"], timeout=240)["status"] == "canceled"
    for job in (old, normal, urgent, higher):
        assert poll(base, job["id"], timeout=240)["status"] == "succeeded"
    order = sorted(
        (records.get(j["id"])["started_at"], name)
        for j, name in ((old, "old"), (normal, "normal"), (urgent, "urgent"), (higher, "higher"))
    )
    assert [name for _, name in order] == ["urgent", "old", "higher", "normal"]


def test_priority_is_validated(api_stack):
    for value in (11, -11, 1.5, "high", True):
        response = requests.post(f"{api_stack.base}/api/jobs", json={"prompt": "p", "priority": value}, timeout=30)
        assert response.status_code == 400, value
        assert response.json()["error"]["field"] == "priority"


def test_a_worker_killed_mid_batch_loses_no_job(make_stack):
    stack = make_stack(BATCH_MAX="4", VISIBILITY_TIMEOUT="4", LEASE_TTL="3")
    first_worker = stack.start_worker()
    base = stack.start_api()
    records = records_of(stack)
    first = blocker(base)
    wait_running(records, first["id"])
    jobs = [
        submit(base, mode="slow", prompt=f"dog {i}", num_inference_steps=150, size="64x64", seed=i) for i in range(4)
    ]

    def batch_under_way() -> bool:
        states = [records.get(job["id"]) for job in jobs]
        return all(s["status"] == "running" and (s["progress"] or {}).get("step", 0) >= 2 for s in states)

    wait_for(batch_under_way, 240, "the batch of four to be under way")
    first_worker.kill()
    first_worker.wait()
    stack.start_worker()
    for job in jobs:
        assert poll(base, job["id"], timeout=300)["status"] == "succeeded"
        stored = records.get(job["id"])
        assert stored["completions"] == 1 and stored["attempts"] == 2


def test_cancelling_one_member_of_a_running_batch_leaves_the_others_undisturbed(make_stack):
    stack = make_stack(BATCH_MAX="4")
    base = stack.start_api()
    records = records_of(stack)
    jobs = [
        submit(base, mode="slow", prompt=f"bird {i}", num_inference_steps=150, size="64x64", seed=i) for i in range(3)
    ]
    stack.start_worker()  # all three wait already: its first delivery takes them as one batch

    def batch_under_way() -> bool:
        states = [records.get(job["id"]) for job in jobs]
        return all(s["status"] == "running" and (s["progress"] or {}).get("step", 0) >= 2 for s in states)

    wait_for(batch_under_way, 240, "the batch of three to be under way")
    response = requests.delete(f"{base}/api/jobs/{jobs[1]['id']}", timeout=30)
    assert response.status_code == 202 and response.json()["cancel_requested"] is True, response.text

    canceled, *others = (poll(base, job["id"], timeout=300) for job in (jobs[1], jobs[0], jobs[2]))
    assert canceled["status"] == "canceled", canceled
    assert canceled["error"]["message"].startswith("canceled on request after step ")
    assert canceled["progress"]["step"] < canceled["progress"]["total"]
    assert requests.get(f"{base}/api/jobs/{jobs[1]['id']}/result", timeout=30).status_code == 409
    for record in others:
        assert record["status"] == "succeeded", record
        assert record["result"]["batch"] == 3
        assert record["progress"]["step"] == record["progress"]["total"] == canceled["progress"]["total"]
        assert requests.get(f"{base}/api/jobs/{record['id']}/result", timeout=30).status_code == 200
