"""Per-key limits (api/limits.py) on a real Redis: the request bucket and the jobs-queued-plus-running
places are taken atomically, and one key that floods is refused while another key's job runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from api.errors import ApiError
from api.limits import TAKEN, TOO_MANY_ACTIVE, KeyLimits, LimitSettings
from jobs.keys import generation_queue, job_key
from tests.processes import wait_for
from tests.test_keys import bearer, create_key

NEVER_REFILLS = "0.0001"
DAY_KEY = "test:day"  # tokens a second: a token comes back after hours, never within a test


def limits(redis_server, burst: int = 5, jobs_max: int = 3, per_day: int = 0) -> KeyLimits:
    settings = LimitSettings(rate=0.0001, burst=burst, jobs_max=jobs_max, retry_after=7, jobs_per_day=per_day)
    return KeyLimits(redis_server.client(), settings)


def test_concurrent_requests_never_spend_one_token_twice(redis_server):
    bucket = limits(redis_server, burst=5)
    with ThreadPoolExecutor(16) as pool:
        waits = list(pool.map(lambda _: bucket.take_request("flood"), range(40)))
    assert sum(wait == 0 for wait in waits) == 5
    assert all(wait > 1000 for wait in waits if wait)  # the next token is hours away at 0.0001/s
    assert bucket.take_request("other") == 0  # each key has its own bucket


def test_concurrent_submissions_take_at_most_jobs_max_places_and_ended_jobs_leave(redis_server):
    places = limits(redis_server, jobs_max=3)
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda i: places.reserve_job("alice", f"job-{i}", DAY_KEY), range(12)))
    taken = [f"job-{i}" for i, outcome in enumerate(outcomes) if outcome == (TAKEN, 0)]
    assert len(taken) == 3  # places held by jobs whose records are not written yet still count
    assert places.reserve_job("alice", "late", DAY_KEY) == (TOO_MANY_ACTIVE, 3)
    client = redis_server.client()
    client.hset(job_key(taken[0]), "status", "queued")
    client.hset(job_key(taken[1]), "status", "succeeded")
    assert places.reserve_job("alice", "after-one-ended", DAY_KEY) == (TAKEN, 0)
    assert places.reserve_job("bob", "bobs", "bobs-day") == (TAKEN, 0)


def test_a_key_that_floods_gets_429_while_another_keys_job_runs(make_stack):
    stack = make_stack(AUTH="keys", KEY_BURST="3", KEY_RATE=NEVER_REFILLS)
    stack.start_worker()
    base = stack.start_api()
    flood, calm = create_key(stack.env, "user", "flood"), create_key(stack.env, "user", "calm")
    codes = [requests.get(f"{base}/api/modes", headers=bearer(flood), timeout=30) for _ in range(6)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429, 429]
    refused = codes[-1]
    assert int(refused.headers["Retry-After"]) > 1000
    assert "KEY_BURST=3" in refused.json()["error"]["message"]
    job = requests.post(f"{base}/api/jobs", json={"prompt": "calm"}, headers=bearer(flood), timeout=30)
    assert job.status_code == 429

    job = requests.post(f"{base}/api/jobs", json={"prompt": "calm"}, headers=bearer(calm), timeout=30)
    assert job.status_code == 202, job.text
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    job_id = job.json()["id"]
    # Waited on in Redis: polling through the API would spend the key's three requests.
    wait_for(lambda: client.hget(job_key(job_id), "status") == b"succeeded", 180, "the calm key's job")
    result = requests.get(f"{base}/api/jobs/{job_id}/result", headers=bearer(calm), timeout=30)
    assert result.status_code == 200 and result.headers["Content-Type"] == "image/png"


def test_jobs_queued_plus_running_per_key_is_429_and_nothing_enqueued(make_stack):
    stack = make_stack(AUTH="keys", KEY_JOBS_MAX="2", RETRY_AFTER="7")
    base = stack.start_api()  # no worker serves the npu mode: its jobs stay queued
    alice, bob = create_key(stack.env, "user", "alice"), create_key(stack.env, "user", "bob")

    def submit(key: str) -> requests.Response:
        return requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": "p"}, headers=bearer(key), timeout=30)

    first, second, third = submit(alice), submit(alice), submit(alice)
    assert [first.status_code, second.status_code, third.status_code] == [202, 202, 429]
    assert third.headers["Retry-After"] == "7"
    assert "KEY_JOBS_MAX=2" in third.json()["error"]["message"]
    assert submit(bob).status_code == 202
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    assert client.llen(generation_queue("rknn", "npu")) == 3

    canceled = requests.delete(f"{base}/api/jobs/{first.json()['id']}", headers=bearer(alice), timeout=30)
    assert canceled.status_code == 200
    assert submit(alice).status_code == 202  # the canceled job left its place
    assert submit(alice).status_code == 429


def test_a_job_refused_at_admission_gives_its_place_back(redis_server):
    places = limits(redis_server, jobs_max=1)
    with pytest.raises(ApiError), places.job_place("alice", "refused"):
        raise ApiError(429, "QUEUE_MAX")  # as Services._submit does when the queues are full
    with places.job_place("alice", "admitted"):
        pass
    with pytest.raises(ApiError) as refused, places.job_place("alice", "one-too-many"):
        pass
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "7"}


def test_jobs_a_day_are_counted_whether_or_not_they_ended_and_a_refused_one_is_not(redis_server):
    places = limits(redis_server, jobs_max=5, per_day=2)
    client = redis_server.client()
    for job in ("first", "second"):
        with places.job_place("alice", job):
            pass
        client.hset(job_key(job), "status", "succeeded")  # ended: its place is free, its count stays
    with pytest.raises(ApiError) as refused, places.job_place("alice", "third"):
        pass
    assert "KEY_JOBS_PER_DAY=2" in refused.value.message
    assert 0 < int(refused.value.headers["Retry-After"]) <= 86400  # until midnight UTC
    with pytest.raises(ApiError), places.job_place("bob", "refused"):
        raise ApiError(429, "QUEUE_MAX")
    for job in ("one", "two"):  # bob's refused job did not count against his day
        with places.job_place("bob", job):
            pass
