"""Custom jobs: a registered handler name and JSON arguments, queued like any job, on their own queue."""

from __future__ import annotations

import requests

from api.schemas.responses import Job
from tests.client import poll
from tests.processes import wait_for


def custom(base: str, body) -> requests.Response:
    return requests.post(f"{base}/api/custom", json=body, timeout=60)


def test_registered_handlers_run_on_a_worker(make_stack):
    stack = make_stack(CUSTOM_HANDLER_MODULES="tests.handlers.sample")
    stack.start_worker()
    base = stack.start_api()

    response = custom(base, {"handler": "add", "args": {"numbers": [1, 2, 3.5]}})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/api/jobs/{response.json()['id']}"
    record = poll(base, response.json()["id"])
    assert record["kind"] == "custom" and record["status"] == "succeeded"
    Job.model_validate(record)  # the documented record is the one served
    assert record["result"]["output"] == {"sum": 6.5}
    assert record["result"]["handler"] == "add"
    image = requests.get(f"{base}/api/jobs/{record['id']}/result", timeout=60)
    assert image.status_code == 409
    assert image.json()["error"]["message"].startswith(f"job {record['id']} is a custom job and made no image")

    echoed = poll(base, custom(base, {"handler": "echo", "args": {"a": [1, {"b": None}]}}).json()["id"])
    assert echoed["result"]["output"] == {"args": {"a": [1, {"b": None}]}}

    failed = poll(base, custom(base, {"handler": "add", "args": {"numbers": "x"}}).json()["id"])
    assert failed["status"] == "failed"
    assert "args.numbers must be a list of numbers" in failed["error"]["message"]

    status = requests.get(f"{base}/api/models/status", timeout=60).json()
    assert "custom" in status["workers"][0]["queues"]
    assert {"add", "echo", "worker_info"} <= set(status["workers"][0]["handlers"])


def test_unknown_handlers_and_bad_arguments_are_refused(make_stack):
    stack = make_stack()
    stack.start_worker()
    base = stack.start_api()
    wait_for(lambda: requests.get(f"{base}/api/models/status", timeout=60).json()["workers"], 30, "a worker")

    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/jobs", "/api/custom"):
        response = requests.post(f"{base}{path}", data=deep, headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 400
        assert "nested too deeply" in response.json()["error"]["message"]

    response = custom(base, {"handler": "os.system", "args": {"cmd": "rm -rf /"}})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "handler"
    assert "echo" in response.json()["error"]["message"]
    for body, field in (
        ({"args": {}}, "handler"),
        ({"handler": "echo", "args": [1]}, "args"),
        ({"handler": "echo", "x": 1}, "x"),
    ):
        response = custom(base, body)
        assert response.status_code == 400, body
        assert response.json()["error"]["field"] == field
    response = custom(base, {"handler": "echo"})
    assert response.status_code == 202
    assert poll(base, response.json()["id"])["result"]["output"] == {"args": {}}, "args default to {}"
