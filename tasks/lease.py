"""Per-job leases: how a job runs to completion once, however often it is delivered.

A worker runs a job only while it holds the job's lease, a Redis key with a TTL
that the process's lease keeper renews (one thread for all the leases a process
holds).  A second delivery of the same job (a Redis
visibility-timeout redelivery, or a restore after a crash) waits while the
lease is alive: if the holder finishes, the duplicate is dropped; if the holder
dies, the lease expires and the duplicate takes over.  The terminal write in
jobs/records.py checks the lease, so only the holder can complete the job, and
gives the lease up in the same step.

The same renewal refreshes the message's entry in kombu's unacked index, so
the broker does not hand a live worker's job to someone else; when the worker
dies, the entry ages and the job is redelivered after VISIBILITY_TIMEOUT.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from jobs.keys import lease_key
from jobs.records import CLAIMED, CLAIMED_TO_STOP, HELD

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
    """One worker's claim on one job, renewed by the process's lease keeper while held."""

    def __init__(self, client: redis.Redis, job_id: str, ttl: float, delivery_tag: str | None = None) -> None:
        self.job_id = job_id
        self.token = uuid.uuid4().hex
        self.interval = ttl / 3  # seconds between renewals
        self._redis = client
        self._ttl_ms = int(ttl * 1000)
        self._delivery_tag = delivery_tag or ""
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._keeper: _Keeper | None = None
        self._released = False
        self.stop_requested = False  # its claim found a cancel already requested (tasks/cancel.py)

    def claimed(self, code: int) -> int:
        """What JobRecords.claim answered for this lease's token, with CLAIMED_TO_STOP read as CLAIMED
        and kept in ``stop_requested``."""
        if code == CLAIMED_TO_STOP:
            self.stop_requested = True
            return CLAIMED
        return code

    def acquire(self, claim: Callable[[str], int]) -> int:
        """Claim the job with this lease's token, waiting while a live holder has it.

        ``claim`` is JobRecords.claim bound to the job; returns its final code.
        """
        while True:
            code = self.claimed(claim(self.token))
            if code != HELD:
                return code
            log.info("job %s: another worker holds the lease; waiting for it to finish or die", self.job_id)
            hold_message(self._redis, self._delivery_tag)
            time.sleep(self.interval)

    def __enter__(self) -> Lease:
        self._keeper = _keeper()
        self._keeper.hold(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Stop renewing and give the lease up; a second call does nothing."""
        self._stop_renewing()
        if not self._released:
            self._release(keys=[lease_key(self.job_id)], args=[self.token])
            self._released = True

    def end(self, write: Callable[..., bool], *args: Any) -> bool:
        """Write the job's end, or its move to another stage, with ``write(job_id, token, *args)``
        (JobRecords.succeed, fail, end_canceled or hand_off), whose script gives the lease up
        in the same step; returns what ``write`` returns (False: the lease was no longer ours)."""
        self._stop_renewing()
        self._released = True
        return write(self.job_id, self.token, *args)

    def renew(self) -> bool:
        """Extend the lease and the message's unacked entry; False once the lease is no longer ours."""
        return bool(
            self._renew(
                keys=[lease_key(self.job_id), UNACKED_INDEX],
                args=[self.token, self._ttl_ms, self._delivery_tag, time.time()],
            )
        )

    def _stop_renewing(self) -> None:
        if self._keeper:
            self._keeper.drop(self)


def hold_message(client: redis.Redis, delivery_tag: str | None) -> None:
    """Refresh a waiting delivery's entry in kombu's unacked index, so the broker does not hand its
    message to another worker while this live one still holds it."""
    if delivery_tag:
        client.zadd(UNACKED_INDEX, {delivery_tag: time.time()}, xx=True)


class _Keeper:
    """The one thread of a process that renews every lease it holds, each a third of its TTL
    after the last renewal: a job, or a batch of them, starts no thread of its own."""

    def __init__(self) -> None:
        self._due: dict[Lease, float] = {}  # held lease -> when its next renewal is due (monotonic)
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def hold(self, lease: Lease) -> None:
        with self._changed:
            self._due[lease] = time.monotonic() + lease.interval
            self._changed.notify()

    def drop(self, lease: Lease) -> None:
        with self._changed:
            self._due.pop(lease, None)

    def _run(self) -> None:
        while True:
            for lease in self._wait_for_due():
                try:
                    renewed = lease.renew()
                except redis.RedisError as exc:
                    log.warning("job %s: could not renew lease: %s", lease.job_id, exc)
                    continue
                with self._changed:
                    # A lease dropped meanwhile was given up on purpose; one still held was taken from us.
                    if not renewed and self._due.pop(lease, None) is not None:
                        log.error("job %s: lease lost; another worker may take the job over", lease.job_id)

    def _wait_for_due(self) -> list[Lease]:
        with self._changed:
            while True:
                now = time.monotonic()
                due = [lease for lease, at in self._due.items() if at <= now]
                if due:
                    for lease in due:
                        self._due[lease] = now + lease.interval
                    return due
                self._changed.wait(min(self._due.values(), default=now + 60) - now)


_keepers: dict[int, _Keeper] = {}
_keepers_lock = threading.Lock()


def _keeper() -> _Keeper:
    """This process's keeper; a forked pool process starts its own (threads do not survive a fork)."""
    pid = os.getpid()
    with _keepers_lock:
        if pid not in _keepers:
            _keepers[pid] = _Keeper()
        return _keepers[pid]
