"""A job's live events on Redis pub/sub, for ``GET /api/jobs/<id>/events`` (api/events.py).

JobRecords publishes one message on ``dl:events:<id>`` after each state write it makes
(claim: ``running``, progress: ``progress``, the terminal writes, a requeue: ``queued``), so any
API process can serve any job's stream: each one holds a single pattern subscription.

Pub/sub keeps nothing: a stream reads the record for the state before its subscription, and a
message lost while an API process reconnects is made up for by the record it reads again at
each idle interval.  A failed publish is logged, never raised: the state write it follows has
already happened, and the job must not fail for want of a listener.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from jobs.keys import PREFIX

log = logging.getLogger(__name__)
PATTERN = f"{PREFIX}:events:*"


def channel(job_id: str) -> str:
    return f"{PREFIX}:events:{job_id}"


def job_of(channel_name: str) -> str:
    return channel_name.rsplit(":", 1)[1]


def publish(client: redis.Redis, job_id: str, event: str, **data: Any) -> None:
    try:
        client.publish(channel(job_id), json.dumps({"event": event, **data}))
    except redis.RedisError as exc:
        log.warning("job %s: could not publish its %s event: %s", job_id, event, exc)
