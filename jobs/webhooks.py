"""Webhooks' shared shapes: a job's registration and the outbox the sender reads (webhooks/sender.py).

A job submitted with ``webhook`` gets a registration hash ``dl:webhook:<id>`` (URL, events
filter; JOB_TTL like its record) written before the job is admitted, so no event of it can
come first.  Each state write publishes its event (jobs/events.py) in one script that also
appends it to the outbox stream when the job has a registration: the outbox is durable, so a
sender that was down finds every event it owes, and jobs without webhooks cost nothing more.
"""

from __future__ import annotations

import json

import redis

from jobs.keys import PREFIX

OUTBOX = f"{PREFIX}:webhooks:outbox"
GROUP = "senders"
RETRIES = f"{PREFIX}:webhooks:retry"  # sorted set: terminal deliveries waiting for their next attempt
EVENTS = ("start", "progress", "completed")
OUTBOX_MAXLEN = 100_000
# A job's state event -> the webhook event it is (Cog's names).
KIND = {
    "running": "start",
    "progress": "progress",
    "succeeded": "completed",
    "failed": "completed",
    "canceled": "completed",
}


def registration_key(job_id: str) -> str:
    return f"{PREFIX}:webhook:{job_id}"


def register(client: redis.Redis, job_id: str, url: str, events: list[str], ttl: int) -> None:
    pipe = client.pipeline()
    pipe.hset(registration_key(job_id), mapping={"url": url, "events": json.dumps(events)})
    pipe.expire(registration_key(job_id), ttl)
    pipe.execute()


def unregister(client: redis.Redis, job_id: str) -> None:
    client.delete(registration_key(job_id))


def registration(client: redis.Redis, job_id: str) -> tuple[str, list[str]] | None:
    raw = client.hgetall(registration_key(job_id))
    if not raw:
        return None
    return raw[b"url"].decode(), json.loads(raw[b"events"])
