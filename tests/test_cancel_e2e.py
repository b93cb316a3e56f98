"""Canceling jobs end to end through real processes: API (gunicorn) -> Redis -> Celery workers -> diffusers."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import redis
import requests

from jobs.superres import generated_key, upload_key
from tests.client import poll, submit
from tests.processes import wait_for
from tests.sr_helpers import encoded, picture, start_superres_worker


def worker_log(stack) -> Path:
    return next(p.log_path for p in stack.processes if p.log_path.name.startswith("worker-"))


def start_long_job(base: str, prompt: str) -> dict:
    """A job that keeps the one worker busy (100 steps at 256 px); returns it once it runs."""
    job = submit(base, mode="slow", prompt=prompt, num_inference_steps=100, seed=3)
    wait_for(lambda: _step(base, job["id"]) >= 1, 240, f"job {job['id']} to report a step")
    return job


def _step(base: str, job_id: str) -> int:
    record = requests.get(f"{base}/api/jobs/{job_id}", timeout=30).json()
    assert record["status"] in ("queued", "running"), record
    return (record.get("progress") or {}).get("step", 0)


def cancel(base: str, job_id: str, how: str = "delete") -> requests.Response:
    if how == "delete":
        return requests.delete(f"{base}/api/jobs/{job_id}", timeout=30)
    return requests.post(f"{base}/api/jobs/{job_id}/cancel", timeout=30)


def stop(base: str, job_id: str) -> dict:
    """Cancel a running job and wait for its worker to stop it."""
    assert cancel(base, job_id, "post").status_code in (200, 202)
    return poll(base, job_id, timeout=240)


def test_a_queued_job_is_canceled_at_once_and_never_runs(api_stack):
    base = api_stack.base
    long = start_long_job(base, "keeps the worker busy")
    queued = submit(base, prompt="never runs", seed=11)

    response = cancel(base, queued["id"])
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["status"] == "canceled"
    assert record["attempts"] == 0
    assert record["finished_at"]
    assert record["error"]["message"] == "canceled on request before it started"
    assert requests.get(f"{base}/api/jobs/{queued['id']}", timeout=30).json() == record

    assert stop(base, long["id"])["status"] == "canceled"
    dropped = f"job {queued['id']}: it already ended; dropping this delivery"
    wait_for(lambda: dropped in worker_log(api_stack).read_text(), 120, "the canceled job's delivery to be dropped")
    assert requests.get(f"{base}/api/jobs/{queued['id']}", timeout=30).json()["attempts"] == 0
    after = submit(base, prompt="the worker goes on", seed=12)
    assert poll(base, after["id"])["status"] == "succeeded"


def test_a_running_job_stops_mid_steps_and_the_worker_takes_the_next(api_stack):
    base = api_stack.base
    job = start_long_job(base, "stopped mid-way")

    response = cancel(base, job["id"])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True

    record = poll(base, job["id"], timeout=240)
    assert record["status"] == "canceled", record
    assert record["progress"]["step"] < record["progress"]["total"]
    assert record["error"]["message"].startswith("canceled on request after step ")
    assert record["attempts"] == 1
    assert "result" not in record
    result = requests.get(f"{base}/api/jobs/{job['id']}/result", timeout=30)
    assert result.status_code == 409

    following = submit(base, prompt="next on the same worker", seed=13)
    assert poll(base, following["id"])["status"] == "succeeded"
    client = redis.Redis.from_url(api_stack.env["REDIS_URL"])
    workers = {client.hget(f"dl:job:{j}", "worker") for j in (job["id"], following["id"])}
    assert len(workers) == 1, "the same worker ran both"
    assert f"job {job['id']}: canceled on request after step" in worker_log(api_stack).read_text()


def test_cancel_of_an_ended_job_is_409_and_of_an_unknown_one_404(api_stack):
    base = api_stack.base
    job = submit(base, prompt="done before the cancel", seed=14)
    assert poll(base, job["id"])["status"] == "succeeded"
    for how in ("delete", "post"):
        response = cancel(base, job["id"], how)
        assert response.status_code == 409, response.text
        assert "already succeeded" in response.json()["error"]["message"]
        assert "only queued or running jobs can be canceled" in response.json()["error"]["message"]
    assert requests.get(f"{base}/api/jobs/{job['id']}", timeout=30).json()["status"] == "succeeded"

    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        for how in ("delete", "post"):
            response = cancel(base, job_id, how)
            assert response.status_code == 404, (job_id, how)
            assert response.json()["error"]["message"]


def test_a_sync_generate_waiter_wakes_with_409_when_its_job_is_canceled(api_stack):
    base = api_stack.base
    long = start_long_job(base, "keeps the sync job queued")
    prompt = f"sync waiter {uuid.uuid4()}"
    answers: list[requests.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(requests.post(f"{base}/generate", json={"prompt": prompt}, timeout=240))
    )
    waiter.start()
    client = redis.Redis.from_url(api_stack.env["REDIS_URL"])
    job_id = wait_for(lambda: _job_with_prompt(client, prompt), 60, "the sync job's record")

    assert cancel(base, job_id).status_code == 200
    waiter.join(timeout=120)
    assert answers, "the waiter did not wake"
    assert answers[0].status_code == 409, answers[0].text
    assert answers[0].headers["X-Job-Id"] == job_id
    assert f"job {job_id} was canceled" in answers[0].json()["error"]["message"]
    assert stop(base, long["id"])["status"] == "canceled"


def _job_with_prompt(client: redis.Redis, prompt: str) -> str | None:
    for key in client.scan_iter("dl:job:*"):
        if client.type(key) == b"hash" and json.loads(client.hget(key, "params") or "{}").get("prompt") == prompt:
            return key.decode().split(":")[-1]
    return None


def test_superres_jobs_waiting_for_an_sr_worker_cancel_at_once(api_stack):
    """No SR worker yet: a standalone SR job stays queued, a generation with superres waits after its hand-off."""
    base = api_stack.base
    store = Path(api_stack.env["STORE_URL"])
    files = {"file": ("in.png", encoded(picture(40, 30)))}
    upload = requests.post(f"{base}/api/superres", files=files, data={"magnitude": "1"}, timeout=60)
    assert upload.status_code == 202, upload.text
    standalone = upload.json()["id"]
    staged = submit(base, prompt="handed to superres", seed=15, superres=True)
    handed = f"job {staged['id']}: generated in"
    wait_for(lambda: handed in worker_log(api_stack).read_text(), 120, "the generation to be handed to superres")
    assert (store / generated_key(staged["id"])).is_file()

    response = cancel(base, standalone)
    assert (response.status_code, response.json()["status"]) == (200, "canceled"), response.text
    response = cancel(base, staged["id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    assert response.json()["error"]["message"] == "canceled on request while no worker held it"

    sr_worker = start_superres_worker(api_stack)
    for job_id in (standalone, staged["id"]):
        dropped = f"job {job_id}: it already ended; dropping this delivery"
        wait_for(lambda line=dropped: line in sr_worker.log_path.read_text(), 120, f"{job_id}'s SR delivery dropped")
    assert not (store / upload_key(standalone)).exists(), "the canceled job's upload is removed"
    assert not (store / generated_key(staged["id"])).exists(), "the canceled job's generated image is removed"


def test_a_flagged_job_whose_worker_was_killed_is_canceled_by_the_next_worker(make_stack):
    """The worker dies before it hears the cancel: the job's next delivery ends it canceled, unrun."""
    stack = make_stack(VISIBILITY_TIMEOUT="4", LEASE_TTL="3")
    first = stack.start_worker()
    base = stack.start_api()
    job = start_long_job(base, "its worker is killed")
    first.kill()
    first.wait()
    response = requests.delete(f"{base}/api/jobs/{job['id']}", timeout=30)
    assert response.status_code == 202 and response.json()["cancel_requested"] is True, response.text

    second = stack.start_worker()
    record = poll(base, job["id"], timeout=240)
    assert record["status"] == "canceled", record
    assert record["error"]["message"] == "canceled on request before this worker started it"
    assert record["attempts"] == 2 and not record.get("progress"), "the next worker claimed it and ran no step"
    assert requests.get(f"{base}/api/jobs/{job['id']}/result", timeout=30).status_code == 409
    assert f"job {job['id']}: canceled on request before this worker started it" in second.log_path.read_text()
    after = submit(base, prompt="the next worker goes on", seed=21)
    assert poll(base, after["id"])["status"] == "succeeded"
