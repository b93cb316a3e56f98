"""The API while Redis is down: /healthz answers 503, submissions are refused, and both recover with Redis."""

from __future__ import annotations

import requests

from tests.processes import wait_for


def health(base: str) -> requests.Response:
    return requests.get(f"{base}/healthz", timeout=30)


def test_healthz_is_503_while_redis_is_down_and_the_api_recovers(make_stack, redis_server):
    stack = make_stack()
    base = stack.start_api()
    assert health(base).json() == {"status": "ok"}

    redis_server.stop()
    down = health(base)
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable" and down.json()["redis"]
    refused = requests.post(f"{base}/api/jobs", json={"prompt": "while Redis is down"}, timeout=30)
    assert refused.status_code == 503 and "Redis is unavailable" in refused.json()["error"]["message"]

    redis_server.start()
    wait_for(lambda: health(base).status_code == 200, 30, "/healthz to answer 200 again")
    accepted = requests.post(f"{base}/api/jobs", json={"prompt": "Redis is back"}, timeout=30)
    assert accepted.status_code == 202, accepted.text
    record = requests.get(f"{base}/api/jobs/{accepted.json()['id']}", timeout=30).json()
    assert record["status"] == "queued"
