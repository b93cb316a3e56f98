"""Per-job leases: how a job runs to completion once, however often it is delivered.

A worker runs a job only while it holds the job's lease, a Redis key with a TTL
that a heartbeat thread renews.  A second delivery of the same job (a Redis
visibility-timeout redelivery, or a restore after a crash) waits while the
lease is alive: if the holder finishes, the duplicate is dropped; if the holder
dies, the lease expires and the duplicate takes over.  The terminal write in
jobs/records.py checks the lease, so only the holder can complete the job.

The same heartbeat refreshes the message's entry in kombu's unacked index, so
the broker does not hand a live worker's job to someone else; when the worker
dies, the entry ages and the job is redelivered after VISIBILITY_TIMEOUT.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis

from jobs.keys import lease_key
from jobs.records import HELD

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[3]) end
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

UNACKED_INDEX = "unacked_index"  # kombu's Redis transport default key


class Lease:
    """One worker's claim on one job, renewed in the background while held."""

    def __init__(self, client: redis.Redis, job_id: str, ttl: float, delivery_tag: str | None = None) -> None:
        self.job_id = job_id
        self.token = uuid.uuid4().hex
        self._redis = client
        self._ttl_ms = int(ttl * 1000)
        self._delivery_tag = delivery_tag or ""
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        self._released = False

    def acquire(self, claim: Callable[[str], int]) -> int:
        """Claim the job with this lease's token, waiting while a live holder has it.

        ``claim`` is JobRecords.claim bound to the job; returns its final code.
        """
        while True:
            code = claim(self.token)
            if code != HELD:
                return code
            log.info("job %s: another worker holds the lease; waiting for it to finish or die", self.job_id)
            if self._delivery_tag:
                self._redis.zadd(UNACKED_INDEX, {self._delivery_tag: time.time()}, xx=True)
            time.sleep(self._ttl_ms / 3000)

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._keep_alive, name=f"lease-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Stop renewing and give the lease up; a second call does nothing."""
        self._stop_renewing()
        if not self._released:
            self._release(keys=[lease_key(self.job_id)], args=[self.token])
            self._released = True

    def give_up(self, write: Callable[[str], bool]) -> bool:
        """Stop renewing and run ``write``, a script that deletes the lease as it moves the job on, with the token."""
        self._stop_renewing()
        self._released = True
        return write(self.token)

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _keep_alive(self) -> None:
        interval = self._ttl_ms / 3000
        while not self._stop.wait(interval):
            try:
                renewed = self._renew(
                    keys=[lease_key(self.job_id), UNACKED_INDEX],
                    args=[self.token, self._ttl_ms, self._delivery_tag, time.time()],
                )
            except redis.RedisError as exc:
                log.warning("job %s: could not renew lease: %s", self.job_id, exc)
                continue
            if not renewed:
                log.error("job %s: lease lost; another worker may take the job over", self.job_id)
                self.lost = True
                return
