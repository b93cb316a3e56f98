"""A small HTTP client for the tests: submit, poll, fetch."""

from __future__ import annotations

import time

import requests


def submit(base: str, **body) -> dict:
    response = requests.post(f"{base}/api/jobs", json=body, timeout=60)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/api/jobs/{response.json()['id']}"
    return response.json()


def poll(base: str, job_id: str, timeout: float = 120, on_update=None) -> dict:
    """Poll until the job ends; ``on_update`` sees every record read on the way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = requests.get(f"{base}/api/jobs/{job_id}", timeout=60).json()
        if on_update:
            on_update(record)
        if record["status"] in ("succeeded", "failed", "canceled"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end within {timeout}s")


def result_bytes(base: str, job_id: str) -> bytes:
    response = requests.get(f"{base}/api/jobs/{job_id}/result", timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    return response.content
