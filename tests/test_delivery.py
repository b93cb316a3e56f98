"""Exactly once: a job completes once when a worker dies, when it outlives the
visibility timeout, and when its task is delivered twice."""

from __future__ import annotations

import redis
from celery import Celery

from jobs.keys import GENERATE_TASK, generation_queue
from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from jobs.records import JobRecords
from tests.client import poll, submit
from tests.conftest import TINY
from tests.processes import wait_for


def records_of(stack) -> JobRecords:
    return JobRecords(redis.Redis.from_url(stack.env["REDIS_URL"]), ttl=3600)


def wait_running(records: JobRecords, job_id: str, min_step: int = 2) -> dict:
    def running():
        record = records.get(job_id)
        progress = record.get("progress") or {}
        return record if record["status"] == "running" and progress.get("step", 0) >= min_step else None

    return wait_for(running, 60, f"job {job_id} to be running")


def log_count(processes, text: str) -> int:
    return sum(p.log_path.read_text().count(text) for p in processes)


def test_worker_killed_mid_job_completes_once_elsewhere(make_stack):
    stack = make_stack(VISIBILITY_TIMEOUT="4", LEASE_TTL="3")
    first = stack.start_worker()
    base = stack.start_api()
    records = records_of(stack)
    job = submit(base, mode="slow", prompt="survive", num_inference_steps=60, seed=5)
    running = wait_running(records, job["id"])
    first.kill()
    first.wait()

    second = stack.start_worker()
    record = poll(base, job["id"], timeout=120)
    assert record["status"] == "succeeded", record
    stored = records.get(job["id"])
    assert stored["attempts"] == 2
    assert stored["completions"] == 1
    assert stored["worker"] != running["worker"]
    assert log_count([second], f"job {job['id']}: ended succeeded") == 1


def test_job_longer_than_visibility_timeout_is_delivered_once(make_stack):
    # The timed backend sleeps 20 steps of 0.5 s: the job lasts at least 10 s, five times the
    # 2 s visibility timeout, on any machine. Without the lease keeper's refresh of the unacked
    # index, kombu would hand the message to the idle worker while the first still runs it.
    stack = make_stack(VISIBILITY_TIMEOUT="2", LEASE_TTL="3", WORKER_BACKEND="timed", TIMED_STEP_SECONDS="0.5")
    workers = [stack.start_worker(), stack.start_worker()]
    base = stack.start_api()
    job = submit(base, mode="demo", prompt="long", num_inference_steps=20, seed=6)
    record = poll(base, job["id"], timeout=180)
    assert record["status"] == "succeeded", record
    stored = records_of(stack).get(job["id"])
    assert stored["deliveries"] == 1, "the job's message was delivered again while its worker ran it"
    assert stored["attempts"] == 1
    assert stored["completions"] == 1
    assert log_count(workers, f"job {job['id']}: running") == 1


def test_duplicate_delivery_waits_for_the_holder_then_drops(make_stack):
    # ROUTER_SWITCH_COST=0: the idle worker joins the busy mode as soon as anything waits
    # there, so the duplicate reaches a second worker while the holder still runs.
    stack = make_stack(LEASE_TTL="3", ROUTER_SWITCH_COST="0")
    workers = [stack.start_worker(), stack.start_worker()]
    base = stack.start_api()
    records = records_of(stack)
    job = submit(base, mode="slow", prompt="twice", num_inference_steps=60, seed=8)
    wait_running(records, job["id"])

    duplicate = GenerateJob(
        job_id=job["id"],
        mode=ResolvedMode(name="slow", model_path=TINY, scheduler="default", backend="torch"),
        params=GenerateParams(**job["params"]),
    )
    producer = Celery(broker=stack.env["REDIS_URL"])
    producer.send_task(GENERATE_TASK, args=[duplicate.to_dict()], queue=generation_queue("torch", "slow"))

    record = poll(base, job["id"], timeout=120)
    assert record["status"] == "succeeded", record
    wait_for(lambda: log_count(workers, "dropping this delivery") == 1, 30, "the duplicate to be dropped")
    assert log_count(workers, "another worker holds the lease") >= 1
    stored = records.get(job["id"])
    assert stored["attempts"] == 1
    assert stored["completions"] == 1
