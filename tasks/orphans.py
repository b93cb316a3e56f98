"""Orphans: turn jobs left running with no lease go back to their mode's waiting set.

A generation or switch job runs only while its worker holds its lease (tasks/lease.py),
and a lease disappears only when its job ends or moves on to super-resolution (in the
same step, which also takes the job out of the running index) or when nobody renews
it.  A job whose record still says ``running`` with no lease therefore lost its
worker, and nothing may be left to run it again: the holder was killed while it ran
another delivery's job, or Redis restarted and lost the lease while the holder ran
on (its end is then refused and its message acked).

The sweeper reads the running index (jobs/keys.py), finds the jobs whose lease is
gone and requeues each in one atomic step (JobRecords.requeue): back in its waiting
set at its old rank, with a message of its own, so the turn invariant of
tasks/turns.py holds again.  A job that a delivery takes over meanwhile keeps its
new lease, and the requeue leaves it alone.  One worker of the fleet sweeps per
interval (a lock in Redis); a sweep reads only the jobs that run now.  The same sweep
gives a message to a mode whose waiting jobs have none left (tasks/stranded.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from jobs.keys import GENERATE_TASK, PREFIX, SWITCH_TASK, lease_key, mode_queue
from jobs.producer import Producer
from jobs.records import JobRecords
from tasks.celery_app import app
from tasks.stranded import ModeName, StrandedTurns

log = logging.getLogger(__name__)
SWEEP_LOCK = f"{PREFIX}:orphans:sweep"


class OrphanSweeper:
    def __init__(
        self,
        client: redis.Redis,
        records: JobRecords,
        router: str,
        interval: float,
        name: str,
        modes: Callable[[], list[ModeName]] | None = None,
    ) -> None:
        """Sweep every ``interval`` seconds (the lease TTL: a lease renewed in time is never missed);
        with ``modes`` (the config's (backend, mode) pairs), for stranded turns too (tasks/stranded.py)."""
        self._records = records
        self._redis = client
        self._router = router
        self._interval = interval
        self._name = name
        self._producer = Producer(app)
        self._stranded = StrandedTurns(client, records, router, modes, self._producer) if modes else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="orphans", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sweep(self) -> list[str]:
        """Requeue the orphans of the fleet, unless another worker swept within the interval; their ids."""
        if not self._redis.set(SWEEP_LOCK, self._name, nx=True, px=int(self._interval * 1000)):
            return []
        if self._stranded:
            self._stranded.sweep()
        now, _ = self._redis.time()
        job_ids = self._records.running(claimed_before=now - self._interval)
        if not job_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(lease_key(job_id))
        leased = pipe.execute()
        return [job_id for job_id, held in zip(job_ids, leased, strict=True) if not held and self._requeue(job_id)]

    def _requeue(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        if record is None or "payload" not in record:
            return False
        payload = record["payload"]
        mode = payload["mode"]
        task = GENERATE_TASK if record["kind"] == "generate" else SWITCH_TASK
        queue = mode_queue(self._router, mode["backend"], mode["name"])
        if not self._records.requeue(job_id, record["waiting"], self._producer.message(task, payload, queue, job_id)):
            return False
        log.warning("job %s: was running with no lease (its worker is gone); back in its mode's queue", job_id)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sweep()
            except redis.RedisError as exc:
                log.warning("could not sweep for orphaned jobs: %s", exc)
