"""A job's live events on Redis pub/sub, for ``GET /api/jobs/<id>/events`` (api/events.py).

JobRecords publishes one message on ``dl:events:<id>`` after each state write it makes
(claim: ``running``, progress: ``progress``, the terminal writes, a requeue: ``queued``), so any
API process can serve any job's stream: each one holds a single pattern subscription.

Pub/sub keeps nothing: a stream reads the record for the state before its subscription, and a
message lost while an API process reconnects is made up for by the record it reads again at
each idle interval.  The same script feeds the webhook outbox (jobs/webhooks.py).  A failed
publish is logged, never raised: the state write it follows has already happened, and the job
must not fail for want of a listener.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from redis.commands.core import Script

from jobs import webhooks
from jobs.keys import PREFIX

log = logging.getLogger(__name__)
PATTERN = f"{PREFIX}:events:*"


def channel(job_id: str) -> str:
    return f"{PREFIX}:events:{job_id}"


def job_of(channel_name: str) -> str:
    return channel_name.rsplit(":", 1)[1]


# Publish, and append to the webhook outbox when the job has a registration (jobs/webhooks.py): one round trip.
_PUBLISH = f"""
redis.call('PUBLISH', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', {webhooks.OUTBOX_MAXLEN}, '*', 'job', ARGV[2], 'event', ARGV[3])
end
"""
_script: Script | None = None


def publish(client: redis.Redis, job_id: str, event: str, **data: Any) -> None:
    global _script
    _script = _script or client.register_script(_PUBLISH)
    keys = [channel(job_id), webhooks.registration_key(job_id), webhooks.OUTBOX]
    try:
        _script(keys=keys, args=[json.dumps({"event": event, **data}), job_id, event], client=client)
    except redis.RedisError as exc:
        log.warning("job %s: could not publish its %s event: %s", job_id, event, exc)
