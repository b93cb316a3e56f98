"""A JSON body over MAX_JSON_BYTES is refused from its Content-Length, before the API reads it."""

from __future__ import annotations

import http.client
import select
from pathlib import Path
from urllib.parse import urlparse

import requests

from tests.processes import API_WORKERS, wait_for

MB = 1024 * 1024


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def api_processes(master: int) -> list[int]:
    """gunicorn's master and its workers."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def test_a_200_mb_body_is_refused_without_being_read(make_stack):
    stack = make_stack()
    base = stack.start_api()
    master = stack.processes[-1].pid
    # /healthz answers once the first worker is up; the others may still be starting, and would count.
    wait_for(lambda: len(api_processes(master)) == 1 + API_WORKERS, 60, "every gunicorn worker to start")
    for _ in range(8):  # every gunicorn worker past its first request, whose imports would count
        assert requests.post(f"{base}/api/jobs", json={}, timeout=30).status_code == 400
    before = sum(rss_kib(pid) for pid in api_processes(master))

    url = urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.putrequest("POST", "/api/jobs")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(200 * MB))
    connection.endheaders()
    for _ in range(200):
        if select.select([connection.sock], [], [], 0)[0]:
            break  # the API answered before reading the body: stop sending, read its answer
        try:
            connection.send(b" " * MB)
        except (BrokenPipeError, ConnectionResetError):
            break  # it closed the connection without reading the rest
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()

    assert response.status == 413, body
    assert "larger than MAX_JSON_BYTES=25165824 bytes" in body
    after = sum(rss_kib(pid) for pid in api_processes(master))
    assert after - before < 20 * 1024, f"the API's memory rose by {(after - before) // 1024} MiB"
