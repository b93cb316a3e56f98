"""The webhook sender: ``python -m webhooks.sender``.  It calls jobs' webhooks, so that neither the
API's request threads nor the workers wait on a client's server.

It reads the outbox stream (jobs/webhooks.py) as a member of a consumer group: an entry is
acknowledged once handled, and a sender that restarts first handles the entries it had read and
not acknowledged, so an event is not lost with the process.  Several senders may share the group.

Policy, as Cog's: ``start`` and ``progress`` are sent once (progress at most every
WEBHOOK_PROGRESS_EVERY seconds per job); ``completed`` is retried with exponential backoff
(WEBHOOK_RETRY_BASE doubling, at most 60 s apart) until the receiver answers 2xx or
WEBHOOK_DEADLINE seconds have passed since its first attempt.  A retry waits in a sorted set
scored by its due time.  The body is the job as ``GET /api/jobs/<id>`` shows it; each request
carries ``X-Dreamlab-Timestamp`` and ``X-Dreamlab-Signature: sha256=HMAC(WEBHOOK_SECRET,
"<timestamp>.<body>")``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass

import redis
import requests
from flask import Flask

from api.views import public_job
from config import Settings
from jobs import logs
from jobs import webhooks as outbox
from jobs.records import JobRecords
from webhooks.policy import RETRY_CAP, WebhookSettings, refusal

log = logging.getLogger("webhooks.sender")
TIMEOUT = 10.0  # seconds a receiver has to answer one request
READ_BLOCK_MS = 1000


@dataclass(frozen=True)
class Delivery:
    job_id: str
    event: str  # start, progress, completed
    attempt: int = 0
    first_at: float = 0.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Sender:
    def __init__(self, client: redis.Redis, records: JobRecords, settings: WebhookSettings, name: str) -> None:
        self.redis = client
        self.records = records
        self.settings = settings
        self.name = name
        self.http = requests.Session()
        self.last_progress: dict[str, float] = {}
        self.views = Flask("dreamlab-webhooks")  # public_job names result URLs with url_for
        self.views.add_url_rule("/api/jobs/<job_id>/result", "jobs.job_result")

    def run(self) -> None:
        try:
            self.redis.xgroup_create(outbox.OUTBOX, outbox.GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._read("0")  # what this sender read before a restart and never acknowledged
        while True:
            self._retry_due()
            self._read(">")

    def _read(self, start: str) -> None:
        block = None if start == "0" else READ_BLOCK_MS
        answer = self.redis.xreadgroup(outbox.GROUP, self.name, {outbox.OUTBOX: start}, count=100, block=block)
        for _, entries in answer or []:
            for entry_id, fields in entries:
                kind = outbox.KIND.get(fields[b"event"].decode())
                if kind:
                    self.handle(Delivery(fields[b"job"].decode(), kind, first_at=time.time()))
                self.redis.xack(outbox.OUTBOX, outbox.GROUP, entry_id)

    def _retry_due(self) -> None:
        for raw in self.redis.zrangebyscore(outbox.RETRIES, "-inf", time.time(), start=0, num=50):
            if self.redis.zrem(outbox.RETRIES, raw):  # claimed: another sender did not take it first
                self.handle(Delivery(**json.loads(raw)))

    def handle(self, delivery: Delivery) -> None:
        registered = outbox.registration(self.redis, delivery.job_id)
        if registered is None or delivery.event not in registered[1]:
            return
        if delivery.event == "progress" and not self._progress_due(delivery.job_id):
            return
        record = self.records.get(delivery.job_id)
        if record is None:
            return
        if delivery.event == "completed":
            self.last_progress.pop(delivery.job_id, None)
        if not self.send(registered[0], delivery, record) and delivery.event == "completed":
            self._schedule_retry(delivery)

    def _progress_due(self, job_id: str) -> bool:
        now = time.monotonic()
        if now - self.last_progress.get(job_id, -1e9) < self.settings.progress_every:
            return False
        self.last_progress[job_id] = now
        return True

    def send(self, url: str, delivery: Delivery, record: dict) -> bool:
        """One attempt; True when the receiver answered 2xx."""
        why = refusal(url, self.settings)
        if why:
            log.warning("job %s: %s webhook not sent: %s", delivery.job_id, delivery.event, why)
            return True  # refused for good: no retry
        with self.views.test_request_context():
            body = json.dumps(public_job(record)).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Dreamlab-Event": delivery.event,
            "X-Dreamlab-Timestamp": stamp,
            "X-Dreamlab-Signature": signature(self.settings.secret, stamp, body),
        }
        try:
            answer = self.http.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
            ok = 200 <= answer.status_code < 300
            outcome = str(answer.status_code)
        except requests.RequestException as exc:
            ok, outcome = False, type(exc).__name__
        log.info("job %s: %s webhook attempt %d: %s", delivery.job_id, delivery.event, delivery.attempt + 1, outcome)
        return ok

    def _schedule_retry(self, delivery: Delivery) -> None:
        wait = min(RETRY_CAP, self.settings.retry_base * 2**delivery.attempt)
        due = time.time() + wait
        if due > delivery.first_at + self.settings.deadline:
            log.error("job %s: completed webhook given up after %d attempts", delivery.job_id, delivery.attempt + 1)
            return
        retry = Delivery(delivery.job_id, delivery.event, delivery.attempt + 1, delivery.first_at)
        self.redis.zadd(outbox.RETRIES, {json.dumps(asdict(retry)): due})


def main() -> int:
    logs.configure()
    settings, hooks = Settings.from_env(), WebhookSettings.from_env()
    if not hooks.secret:
        print("error: WEBHOOK_SECRET is not set; webhooks are signed with it", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(settings.redis_url)
    # A stable name: a restarted sender finds the entries it had read and not acknowledged.
    name = os.environ.get("WEBHOOK_SENDER_NAME") or socket.gethostname()
    log.info("webhook sender %s started", name)
    Sender(client, JobRecords(client, settings.job_ttl), hooks, name).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
