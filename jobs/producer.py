"""Celery task messages pushed by our own Lua scripts, in the same atomic step as the record changes.

Celery builds the task message (``as_task_v2``) and kombu's serializer its body; this
module wraps them in the envelope that kombu's Redis transport keeps in a queue's list.
The API's admit script (jobs/records.py) pushes a job's message with its record, so a job
is never recorded without its message, nor its message sent without the record; the
hand-off to super-resolution pushes the SR stage as it gives up the generation's lease.
The API names tasks by string and never imports tasks/.  tests/test_producer.py
compares the envelope with one that kombu publishes itself, so a Celery or kombu upgrade
that changes the format fails a test, not a job.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from celery import Celery
from celery.utils.nodenames import anon_nodename
from kombu.serialization import dumps

from jobs.records import QueuedMessage


class Producer:
    """Builds the messages of tasks sent by name to the workers' queues, as ``app`` would send them."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._origin = anon_nodename()

    def message(self, task: str, payload: dict[str, Any], queue: str, task_id: str) -> QueuedMessage:
        """The message of task ``task`` with the one argument ``payload``, for ``queue`` (priority 0: its own list)."""
        headers, properties, body, _ = self._app.amqp.as_task_v2(
            task_id,
            task,
            args=[payload],
            kwargs={},
            origin=self._origin,
            ignore_result=True,
            argsrepr=shown(payload),
            kwargsrepr="{}",
        )
        content_type, encoding, data = dumps(body, serializer=self._app.conf.task_serializer)
        envelope = {
            "body": base64.b64encode(data.encode(encoding) if isinstance(data, str) else data).decode("ascii"),
            "content-encoding": encoding,
            "content-type": content_type,
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return QueuedMessage(queue, json.dumps(envelope))


def shown(payload: dict[str, Any]) -> str:
    """The task's argument as task events show it (Flower's task view, ``celery events``): the job and
    what it runs, not its prompt or files. Celery's own repr of the whole payload was a quarter of the
    API's CPU per job, and it put prompts in every event."""
    summary = {"job_id": payload.get("job_id")}
    if isinstance(payload.get("mode"), dict):
        summary["mode"] = payload["mode"].get("name")
    if "handler" in payload:
        summary["handler"] = payload["handler"]
    return repr((summary,))
