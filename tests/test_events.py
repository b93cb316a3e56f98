"""``GET /api/jobs/<id>/events`` end to end: real redis-server, the API under gunicorn (two of them),
a real torch worker on the tiny model.  A stream opened before the job starts sees every state in
order, on either API; one opened after the end gets ``succeeded`` at once; each API process holds
at most SSE_MAX_STREAMS streams and keeps answering other requests."""

from __future__ import annotations

import threading
from itertools import islice

import requests

from dreamlab_client.sse import Event, parse
from tests.client import submit
from tests.processes import wait_for


class Listener:
    """Reads one job's event stream in a thread, keeping every event."""

    def __init__(self, base: str, job_id: str) -> None:
        self.response = requests.get(f"{base}/api/jobs/{job_id}/events", stream=True, timeout=120)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.events: list[Event] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for event in parse(self.response.iter_lines(decode_unicode=True)):
            self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events if e.name]

    def finish(self, timeout: float = 180) -> list[Event]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the stream did not end; events so far: {self.names()}"
        return [e for e in self.events if e.name]


def test_streams_opened_before_the_start_see_every_state_in_order_on_two_apis(make_stack):
    # No idle re-read of the record during the test: every event must come through pub/sub.
    stack = make_stack(SSE_KEEPALIVE="600")
    apis = [stack.start_api(), stack.start_api()]
    job = submit(apis[0], mode="slow", prompt="streamed", num_inference_steps=8, seed=3)
    listeners = [Listener(base, job["id"]) for base in apis]
    for listener in listeners:
        wait_for(lambda listener=listener: "queued" in listener.names(), 30, "the queued event")
        first = listener.events[0]
        assert first.name == "queued" and first.data["id"] == job["id"] and first.data["position"] == 1

    stack.start_worker()
    for listener in listeners:
        events = listener.finish()
        names = [e.name for e in events]
        assert names[:2] == ["queued", "running"] and names[-1] == "succeeded", names
        assert set(names[2:-1]) == {"progress"} and len(names) >= 4, names
        steps = [e.data["step"] for e in events if e.name == "progress"]
        assert steps == sorted(set(steps)) and len({e.data["total"] for e in events if e.name == "progress"}) == 1
        assert events[-1].data["result"]["url"] == f"/api/jobs/{job['id']}/result"

    late = Listener(apis[1], job["id"]).finish(30)
    assert [e.name for e in late] == ["succeeded"]
    assert late[0].data == requests.get(f"{apis[1]}/api/jobs/{job['id']}", timeout=30).json()


def test_each_api_process_holds_at_most_sse_max_streams(make_stack):
    stack = make_stack(SSE_MAX_STREAMS="1", SSE_KEEPALIVE="1")
    base = stack.start_api()  # two gunicorn processes: two streams at most
    job = submit(base, mode="npu", prompt="never runs")
    url = f"{base}/api/jobs/{job['id']}/events"
    opened, refused = [], None
    for _ in range(3):
        response = requests.get(url, stream=True, timeout=30)
        if response.status_code == 503:
            refused = response
            break
        assert response.status_code == 200, response.text
        opened.append(response)
    assert refused is not None, "a third stream was accepted by two processes allowed one each"
    assert "SSE_MAX_STREAMS=1" in refused.json()["error"]["message"] and refused.headers["Retry-After"]
    assert requests.get(f"{base}/api/jobs/{job['id']}", timeout=30).status_code == 200
    lines = opened[0].iter_lines(decode_unicode=True)
    assert [event.name for event in islice(parse(lines), 2)] == ["queued", ""]  # then an idle comment

    for response in opened:
        response.close()
    # A closed stream frees its place once the server notices (its next keepalive write fails).
    wait_for(lambda: requests.get(url, stream=True, timeout=30).status_code == 200, 60, "a place after closing")
