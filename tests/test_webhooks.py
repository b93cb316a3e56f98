"""Webhooks end to end: real redis-server, the API under gunicorn, a torch worker on the tiny model, the
sender process (python -m webhooks.sender), and receivers on loopback (which the stack's WEBHOOK_ALLOW
lets through).  The receiver checks each request's signature with its own HMAC.  Every kind of job
takes a webhook: generation, super-resolution, mode switch, custom, and the compatible routes' jobs
(through the X-Dreamlab-Webhook header)."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
import redis
import requests

from tests.client import submit
from tests.processes import own_stack, wait_for
from tests.sr_helpers import encoded, picture, start_superres_worker

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
        start_superres_worker(stack)
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


def completed(stack, receiver: Receiver) -> dict:
    """The one signed ``completed`` webhook's body, checked to be the job as GET /api/jobs/<id> shows it."""
    wait_for(lambda: "completed" in receiver.events(), 120, "the completed webhook")
    call = receiver.calls[receiver.events().index("completed")]
    assert signed(call)
    body = json.loads(call["body"])
    assert body == requests.get(f"{stack.base}/api/jobs/{body['id']}", timeout=30).json()
    return body


def test_a_superres_job_tells_its_webhook(hook_stack):
    receiver = Receiver()
    fields = {"magnitude": "1", "webhook": receiver.url, "webhook_events_filter": ["start", "completed"]}
    files = {"file": ("in.png", IMAGE)}
    answer = requests.post(f"{hook_stack.base}/api/superres", files=files, data=fields, timeout=60)
    assert answer.status_code == 202, answer.text
    body = completed(hook_stack, receiver)
    assert body["id"] == answer.json()["id"] and body["kind"] == "superres" and body["status"] == "succeeded"
    assert receiver.events() == ["start", "completed"]


def test_a_mode_switch_tells_its_webhook(hook_stack):
    receiver = Receiver()
    body = {"mode": "demo", "webhook": receiver.url, "webhook_events_filter": ["completed"]}
    answer = requests.post(f"{hook_stack.base}/api/modes/switch", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    record = completed(hook_stack, receiver)
    assert record["id"] == answer.json()["id"] and record["kind"] == "switch" and record["status"] == "succeeded"
    assert receiver.events() == ["completed"]


def test_a_custom_job_tells_its_webhook(hook_stack):
    receiver = Receiver()
    body = {"handler": "echo", "args": {"a": 1}, "webhook": receiver.url}
    answer = requests.post(f"{hook_stack.base}/api/custom", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    record = completed(hook_stack, receiver)
    assert record["kind"] == "custom" and record["result"]["output"] == {"args": {"a": 1}}


def test_an_openai_client_names_a_webhook_in_a_header(hook_stack):
    receiver = Receiver()
    client = openai.OpenAI(base_url=f"{hook_stack.base}/v1", api_key="sk-anything", max_retries=0, timeout=120)
    headers = {"X-Dreamlab-Webhook": receiver.url, "X-Dreamlab-Webhook-Events": "completed"}
    raw = client.images.with_raw_response.generate(prompt="a bell", size="64x64", extra_headers=headers)
    record = completed(hook_stack, receiver)
    assert record["id"] == raw.headers["X-Job-Id"] and record["kind"] == "generate"
    assert receiver.events() == ["completed"]


REFUSED = "http://10.1.2.3/hook"
IMAGE = encoded(picture(24, 16))  # a real image: the webhook, not the upload, is what is refused


@pytest.mark.parametrize(
    ("path", "request_args", "field"),
    [
        ("/api/superres", {"files": {"file": ("in.png", IMAGE)}, "data": {"webhook": REFUSED}}, "webhook"),
        ("/superres", {"files": {"file": ("in.png", IMAGE)}, "data": {"webhook": REFUSED}}, "webhook"),
        ("/api/modes/switch", {"json": {"mode": "demo", "webhook": REFUSED}}, "webhook"),
        ("/api/custom", {"json": {"handler": "echo", "webhook": REFUSED}}, "webhook"),
        ("/sdapi/v1/txt2img", {"json": {"prompt": "x"}, "headers": {"X-Dreamlab-Webhook": REFUSED}}, None),
        (
            "/sdapi/v1/options",
            {"json": {"sd_model_checkpoint": "demo"}, "headers": {"X-Dreamlab-Webhook": REFUSED}},
            None,
        ),
        ("/v1/images/generations", {"json": {"prompt": "x"}, "headers": {"X-Dreamlab-Webhook": REFUSED}}, None),
    ],
)
def test_a_disallowed_destination_on_any_job_route_is_400(hook_stack, path, request_args, field):
    before = requests.get(f"{hook_stack.base}/api/jobs", timeout=30).json()["jobs"]
    answer = requests.post(f"{hook_stack.base}{path}", timeout=30, **request_args)
    assert answer.status_code == 400, answer.text
    assert "10.1.2.3" in answer.text and "WEBHOOK_ALLOW" in answer.text
    if field:
        assert answer.json()["error"]["field"] == field
    assert requests.get(f"{hook_stack.base}/api/jobs", timeout=30).json()["jobs"] == before  # nothing accepted


def test_the_events_filter_of_an_upload_and_of_a_header_is_checked(hook_stack):
    files = {"file": ("in.png", IMAGE)}
    fields = {"webhook": "http://127.0.0.1:9/h", "webhook_events_filter": "start,output"}
    answer = requests.post(f"{hook_stack.base}/api/superres", files=files, data=fields, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["field"].startswith("webhook_events_filter")
    headers = {"X-Dreamlab-Webhook-Events": "completed"}
    answer = requests.post(f"{hook_stack.base}/sdapi/v1/txt2img", json={"prompt": "x"}, headers=headers, timeout=30)
    assert answer.status_code == 400 and "X-Dreamlab-Webhook" in answer.text


def test_a_job_refused_admission_leaves_no_webhook_registration(make_stack):
    """QUEUE_MAX=1 and no worker: the second job is refused with 429, and its registration goes with it."""
    stack = make_stack(QUEUE_MAX="1", WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW="127.0.0.1/32")
    base = stack.start_api()
    hook = {"webhook": "http://127.0.0.1:9/hook"}
    kept = requests.post(f"{base}/api/jobs", json={"prompt": "waits", **hook}, timeout=30)
    assert kept.status_code == 202, kept.text
    refused = requests.post(f"{base}/api/jobs", json={"prompt": "one too many", **hook}, timeout=30)
    assert refused.status_code == 429, refused.text
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    assert {key.decode() for key in client.scan_iter("dl:webhook:*")} == {f"dl:webhook:{kept.json()['id']}"}
