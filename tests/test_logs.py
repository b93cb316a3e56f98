"""LOG_FORMAT=json: API (its access log too) and worker lines about a job are JSON objects carrying its id,
and each of the job's transitions (queued, running, ended) is one line, with no line of Celery's own
beside them.  Real processes."""

from __future__ import annotations

import json

from tests.client import poll, submit
from tests.test_delivery import records_of


def lines_naming(process, job_id: str) -> list[dict]:
    """The process' log lines that name ``job_id``, each parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in process.log_path.read_text().splitlines() if job_id in line]


def test_json_logs_give_one_line_per_job_transition_with_id_mode_worker_and_durations(make_stack):
    stack = make_stack(LOG_FORMAT="json")
    worker = stack.start_worker()
    base = stack.start_api()
    api = next(p for p in stack.processes if p.log_path.name.startswith("api-"))
    job = submit(base, prompt="logged", seed=3)
    record = poll(base, job["id"])
    assert record["status"] == "succeeded"
    ran_on = records_of(stack).get(job["id"])["worker"]

    api_lines = lines_naming(api, job["id"])
    assert [line["message"] for line in api_lines if line["logger"] == "api"] == [
        f"job {job['id']}: generate queued on gen.torch.demo"
    ]
    access = [line["message"] for line in api_lines if line["logger"] == "gunicorn.access"]
    assert any(f'"GET /api/jobs/{job["id"]} HTTP/1.1" 200' in message for message in access), access
    assert any('"POST /api/jobs HTTP/1.1" 202' in message for message in _access_lines(api)), api.log_path

    worker_lines = lines_naming(worker, job["id"])
    assert all(line["job_id"] == job["id"] for line in worker_lines if line["message"].startswith("job "))
    running = [line for line in worker_lines if line["message"].startswith(f"job {job['id']}: running")]
    assert len(running) == 1 and ran_on in running[0]["message"]
    (ended,) = [line for line in worker_lines if line["message"].startswith(f"job {job['id']}: ended succeeded kind=")]
    assert f"mode=demo worker={ran_on}" in ended["message"]
    for figure in ("queue_wait=", "run=", "end_to_end="):
        assert figure in ended["message"]
    # Celery's own "received" and "succeeded" lines would say the same twice more.
    assert not [line for line in worker_lines if line["logger"].startswith("celery")], worker_lines


def _access_lines(process) -> list[str]:
    lines = [json.loads(line) for line in process.log_path.read_text().splitlines() if line.startswith("{")]
    return [line["message"] for line in lines if line["logger"] == "gunicorn.access"]
