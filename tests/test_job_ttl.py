"""JOB_TTL: every record a job leaves in Redis expires, and the API's 404 says the record may have expired."""

from __future__ import annotations

import redis
import requests

from jobs.keys import job_key
from tests.client import poll, submit
from tests.processes import wait_for


def test_records_expire_after_job_ttl_and_the_404_says_so(make_stack):
    stack = make_stack(JOB_TTL="600")
    stack.start_worker()
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])

    done = submit(base, prompt="a finished job's record keeps its expiry")
    assert poll(base, done["id"])["status"] == "succeeded"
    keys = [key.decode() for key in client.scan_iter(f"{job_key(done['id'])}*")]
    assert job_key(done["id"]) in keys
    assert {key: 0 < client.ttl(key) <= 600 for key in keys} == dict.fromkeys(keys, True)

    short = stack.start_api({"JOB_TTL": "2"})
    waiting = submit(short, mode="npu", prompt="waits for a worker that never comes")
    assert 0 < client.ttl(job_key(waiting["id"])) <= 2
    wait_for(lambda: not client.exists(job_key(waiting["id"])), 30, "the queued job's record to expire")
    for path in (f"/api/jobs/{waiting['id']}", f"/api/jobs/{waiting['id']}/result"):
        response = requests.get(f"{short}{path}", timeout=30)
        assert response.status_code == 404, path
        message = response.json()["error"]["message"]
        assert waiting["id"] in message and "its record expired (JOB_TTL)" in message, message
