"""Limits: a full queue answers 429 and enqueues nothing; a slow /generate answers 504 and keeps the job."""

from __future__ import annotations

import redis
import requests

from jobs.keys import generation_queue


def test_full_queue_is_429_with_retry_after_and_nothing_enqueued(make_stack):
    stack = make_stack(QUEUE_MAX="2", RETRY_AFTER="7")
    base = stack.start_api()  # no worker serves the rknn mode: its jobs wait
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    accepted = [
        requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": f"p{i}"}, timeout=10) for i in range(2)
    ]
    assert [r.status_code for r in accepted] == [202, 202]

    for path, body in (("/api/jobs", {"mode": "npu", "prompt": "third"}), ("/generate", {"prompt": "sync"})):
        response = requests.post(f"{base}{path}", json=body, timeout=10)
        assert response.status_code == 429, response.text
        assert response.headers["Retry-After"] == "7"
        assert "QUEUE_MAX=2" in response.json()["error"]["message"]

    assert client.llen(generation_queue("rknn", "npu")) == 2
    assert client.llen(generation_queue("torch", "demo")) == 0
    assert len(list(client.scan_iter("dl:job:*"))) == 2


def test_generate_past_default_timeout_is_504_with_the_job_to_poll(make_stack):
    stack = make_stack(DEFAULT_TIMEOUT="1")
    base = stack.start_api()  # no worker serves the rknn mode: the job stays queued
    response = requests.post(f"{base}/generate", json={"mode": "npu", "prompt": "late"}, timeout=30)
    assert response.status_code == 504, response.text
    job_id = response.headers["X-Job-Id"]
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    assert "DEFAULT_TIMEOUT=1s" in response.json()["error"]["message"]
    assert requests.get(f"{base}{response.headers['Location']}", timeout=10).json()["status"] == "queued"
