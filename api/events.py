"""``GET /api/jobs/<id>/events``: a job's life as Server-Sent Events.

Events: ``queued`` (with ``position``, 1 being next, when the job waits in a mode's queue),
``running``, ``progress`` (``step``, ``total``), then one of ``succeeded`` (the job as
``GET /api/jobs/<id>`` shows it, result included), ``failed`` or ``canceled``; the stream ends
after it.  An idle stream sends a comment every SSE_KEEPALIVE seconds.

A stream subscribes first (api/streams.py) and reads the record after, so a client that
connects late gets the current state at once and misses nothing after it.  Messages that
repeat what the record showed are dropped by EventOrder: statuses only move forward (except a
requeue, which a worker's death causes), and a step is sent once.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import redis
from flask import Blueprint, Response, current_app, json, stream_with_context

from api.jobs import JOB_NOT_FOUND, load_record
from api.openapi import documented
from api.services import services
from api.streams import EXTENSION, StreamHub
from api.views import public_job
from jobs.records import CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL

bp = Blueprint("events", __name__)
_RANK = {QUEUED: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2, CANCELED: 2}


class EventOrder:
    """Which events a stream sends: (name, data or None to render from the record)."""

    def __init__(self) -> None:
        self.status: str | None = None
        self._progress: tuple[int, int] = (0, 0)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def from_record(self, record: dict[str, Any]) -> list[tuple[str, dict | None]]:
        out: list[tuple[str, dict | None]] = []
        status = record["status"]
        if self.status is None or _RANK[status] > _RANK[self.status]:
            self.status = status
            out.append((status, None))
        progress = record.get("progress")
        if status == RUNNING and progress:
            out += self._step(progress["step"], progress["total"])
        return out

    def from_message(self, message: dict[str, Any]) -> list[tuple[str, dict | None]]:
        event = message["event"]
        if event == "progress":
            return self._step(message["step"], message["total"]) if self.status == RUNNING else []
        if event == QUEUED and message.get("requeued"):
            self.status, self._progress = QUEUED, (0, 0)
            return [(QUEUED, None)]
        if event in _RANK and (self.status is None or _RANK[event] > _RANK[self.status]):
            self.status = event
            return [(event, None)]
        return []

    def _step(self, step: int, total: int) -> list[tuple[str, dict | None]]:
        done, of = self._progress
        if total == of and step <= done:
            return []
        self._progress = (step, total)
        return [("progress", {"step": step, "total": total})]


@bp.get("/api/jobs/<job_id>/events")
@documented(
    tags=("jobs",),
    ok={200: (None, "Server-Sent Events: queued, running, progress, then succeeded, failed or canceled.")},
    errors={404: JOB_NOT_FOUND, 503: "This API process holds `SSE_MAX_STREAMS` streams already; retry later."},
    media={200: ("text/event-stream",)},
)
def job_events(job_id: str):
    """The job's live progress as Server-Sent Events, its current state first."""
    load_record(job_id)  # 404 for an unknown job or another key's
    hub: StreamHub = current_app.extensions[EXTENSION]
    stack = ExitStack()
    inbox = stack.enter_context(hub.listen(job_id))
    response = Response(
        stream_with_context(_stream(job_id, inbox, hub.settings.keepalive)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(stack.close)
    return response


def _stream(job_id: str, inbox: queue.SimpleQueue, keepalive: float) -> Iterator[str]:
    records = services().records
    order = EventOrder()
    record = records.get(job_id)
    if record is None:
        return
    yield from _frames(job_id, order.from_record(record), record)
    while not order.ended:
        try:
            message = inbox.get(timeout=keepalive)
        except queue.Empty:
            # A message lost while the subscription reconnected shows in the record.
            try:
                record = records.get(job_id)
            except redis.RedisError:
                yield ": keepalive\n\n"  # Redis busy or away: the stream waits on
                continue
            if record is None:
                return
            events = order.from_record(record)
            yield from _frames(job_id, events, record) if events else [": keepalive\n\n"]
            continue
        yield from _frames(job_id, order.from_message(message), None)


def _frames(job_id: str, events: list[tuple[str, dict | None]], record: dict[str, Any] | None) -> Iterator[str]:
    for name, data in events:
        yield f"event: {name}\ndata: {json.dumps(_data(job_id, name, data, record))}\n\n"


def _data(job_id: str, name: str, data: dict | None, record: dict[str, Any] | None) -> dict[str, Any]:
    """A progress event's own data; a status event's job view (read again for a terminal one)."""
    if data is not None:
        return {"id": job_id, **data}
    if name in TERMINAL:
        record = services().records.get(job_id) or record
    if record is None or record["status"] != name:
        return {"id": job_id, "status": name}
    view = public_job(record)
    if name == QUEUED and record.get("waiting"):
        rank = services().redis.zrank(record["waiting"], job_id)
        if rank is not None:
            view["position"] = rank + 1
    return view
