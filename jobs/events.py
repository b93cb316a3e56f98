"""A job's live events on Redis pub/sub, for ``GET /api/jobs/<id>/events`` (api/events.py).

JobRecords publishes one message on ``dl:events:<id>`` in each state write it makes (claim:
``running``, progress: ``progress``, the terminal writes, a cancel, a requeue: ``queued``), in the
write's own script, so any API process can serve any job's stream: each one holds a single
pattern subscription.

Pub/sub keeps nothing: a stream reads the record for the state before its subscription, and a
message lost while an API process reconnects is made up for by the record it reads again at
each idle interval.  The same Lua function feeds the webhook outbox (jobs/webhooks.py).
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


# Publish, and append to the webhook outbox when the job has a registration (jobs/webhooks.py).  The
# scripts of jobs/records.py that change a job's state define and call this function, so a state write
# and its event are one round trip and one atomic step.
LUA_PUBLISH = f"""
local function publish_event(channel, registration, outbox, message, job, event)
  redis.call('PUBLISH', channel, message)
  if redis.call('EXISTS', registration) == 1 then
    redis.call('XADD', outbox, 'MAXLEN', '~', {webhooks.OUTBOX_MAXLEN}, '*', 'job', job, 'event', event)
  end
end
"""
_PUBLISH = LUA_PUBLISH + "publish_event(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])"
_script: Script | None = None


def keys(job_id: str) -> list[str]:
    """The keys ``publish_event`` writes for ``job_id``, in its order."""
    return [channel(job_id), webhooks.registration_key(job_id), webhooks.OUTBOX]


def message(event: str, **data: Any) -> str:
    return json.dumps({"event": event, **data})


def publish(client: redis.Redis, job_id: str, event: str, **data: Any) -> None:
    """Publish an event on its own, outside a state write."""
    global _script
    _script = _script or client.register_script(_PUBLISH)
    try:
        _script(keys=keys(job_id), args=[message(event, **data), job_id, event], client=client)
    except redis.RedisError as exc:
        log.warning("job %s: could not publish its %s event: %s", job_id, event, exc)
