"""Webhooks end to end: real redis-server, the API under gunicorn, a torch worker on the tiny model, the
sender process (python -m webhooks.sender), and receivers on loopback (which the stack's WEBHOOK_ALLOW
lets through).  The receiver checks each request's signature with its own HMAC."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.client import submit
from tests.processes import own_stack, wait_for

SECRET = "test-webhook-secret"


class Receiver:
    """An HTTP server on loopback that keeps every request, and answers 503 to the first ``fail_first``."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                self.send_response(503 if len(receiver.calls) <= receiver.fail_first else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def events(self) -> list[str]:
        return [call["headers"]["X-Dreamlab-Event"] for call in self.calls]


def signed(call: dict) -> bool:
    stamp = call["headers"]["X-Dreamlab-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + call["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(call["headers"]["X-Dreamlab-Signature"], f"sha256={expected}")


@pytest.fixture(scope="module")
def hook_stack(tmp_path_factory, modes_file):
    overrides = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_ALLOW": "127.0.0.1/32", "WEBHOOK_RETRY_BASE": "0.2"}
    with own_stack(tmp_path_factory.mktemp("webhooks"), modes_file, **overrides) as stack:
        stack.start_worker()
        stack.spawn("webhooks", [sys.executable, "-m", "webhooks.sender"])
        stack.base = stack.start_api()
        yield stack


def test_start_and_completed_arrive_signed_with_the_job_as_its_body(hook_stack):
    receiver = Receiver()
    job = submit(
        hook_stack.base, prompt="hooked", seed=4, webhook=receiver.url, webhook_events_filter=["start", "completed"]
    )
    wait_for(lambda: "completed" in receiver.events(), 120, "the completed webhook")
    assert receiver.events() == ["start", "completed"]  # no progress: the filter left it out
    assert all(signed(call) for call in receiver.calls)
    start, completed = (json.loads(call["body"]) for call in receiver.calls)
    assert start["id"] == job["id"] and start["status"] == "running"
    assert completed == requests.get(f"{hook_stack.base}/api/jobs/{job['id']}", timeout=30).json()
    assert completed["status"] == "succeeded" and completed["result"]["url"].endswith("/result")


def test_a_receiver_down_for_three_attempts_still_gets_completed(hook_stack):
    receiver = Receiver(fail_first=3)
    submit(hook_stack.base, prompt="retried", seed=5, webhook=receiver.url, webhook_events_filter=["completed"])
    wait_for(lambda: len(receiver.calls) == 4, 120, "the fourth attempt")
    assert receiver.events() == ["completed"] * 4
    assert all(signed(call) for call in receiver.calls)
    assert len({call["body"] for call in receiver.calls}) == 1


def test_a_disallowed_destination_is_400_at_submit(hook_stack):
    before = requests.get(f"{hook_stack.base}/api/jobs", timeout=30).json()["jobs"]
    for url in ("http://10.1.2.3/hook", "http://127.0.0.2:9/hook", "http://[::1]:9/hook", "ftp://127.0.0.1/x"):
        answer = requests.post(f"{hook_stack.base}/api/jobs", json={"prompt": "x", "webhook": url}, timeout=30)
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["error"]["field"] == "webhook"
    synchronous = requests.post(
        f"{hook_stack.base}/generate", json={"prompt": "x", "webhook": "http://10.1.2.3/"}, timeout=30
    )
    assert synchronous.status_code == 400 and synchronous.json()["error"]["field"] == "webhook"
    bad_filter = {"prompt": "x", "webhook": "http://127.0.0.1:9/h", "webhook_events_filter": ["output"]}
    assert requests.post(f"{hook_stack.base}/api/jobs", json=bad_filter, timeout=30).status_code == 400
    assert requests.get(f"{hook_stack.base}/api/jobs", timeout=30).json()["jobs"] == before  # nothing accepted
