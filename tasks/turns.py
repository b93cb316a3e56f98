"""Whose turn it is: which of a mode's waiting jobs a delivery runs, and which run with it.

A generation or switch job's Celery message is a turn on its mode's queue, not an
order for that one job: the delivery runs the job that the mode's waiting set ranks
first (submit time less its priority head start, jobs/records.py), and, when that is
a plain txt2img job, up to BATCH_MAX - 1 compatible waiting jobs with it in one
pipeline call.  Every job keeps its own lease, progress, result and record.

Why no job is lost.  A message is consumed without running its own job only
- when its job has ended;
- when another waiting job ran in its place: the job stays in the waiting set, and
  every delivery takes at least one job out of that set, so a mode never has fewer
  messages than waiting jobs;
- after it was published again: a delivery whose job runs in a live batch elsewhere
  re-publishes it before running other work, so a message remains for the job should
  that batch's worker die.
A job whose worker died keeps its own message, which takes the job over once its
lease expires (tasks/lease.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import redis

from jobs.keys import job_key, lease_key
from jobs.messages import GenerateJob, SwitchJob
from jobs.records import QUEUED, RUNNING

log = logging.getLogger(__name__)
LOOK_AHEAD = 5  # first-ranked jobs tried in turn when other workers claim them first

ModeJob = GenerateJob | SwitchJob


class Turns:
    def __init__(
        self,
        client: redis.Redis,
        republish: Callable[[ModeJob], None],
        batch_max: int,
    ) -> None:
        self._redis = client
        self._republish = republish
        self.batch_max = batch_max

    def leads(self, job: ModeJob, waiting: str) -> Iterator[ModeJob]:
        """The jobs this delivery of ``job`` should try to run, best first; ``job`` itself last.

        Other jobs are to be claimed once each (another worker may win them); ``job``
        itself is claimed as any delivery claims its job, waiting for a live holder.
        One pipelined read serves the common case, ``job`` first in its waiting set.
        """
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(job_key(job.job_id), "status")
        pipe.exists(lease_key(job.job_id))
        pipe.zscore(waiting, job.job_id)
        pipe.zrange(waiting, 0, LOOK_AHEAD - 1, withscores=True)
        raw_status, leased, score, first = pipe.execute()
        status = raw_status.decode() if raw_status else None
        if status == RUNNING and not leased:
            yield job  # its worker died: take it over
            return
        if status == QUEUED and score is not None:
            # Only jobs ranked before its own (ties included) go first; otherwise the delivery is a free turn.
            first = [(member, rank) for member, rank in first if rank <= score]
        others = self._queued([member.decode() for member, _ in first if member.decode() != job.job_id], waiting)
        if status == RUNNING and others:
            self._republish(job)
            log.info("job %s: runs in a batch elsewhere; its delivery was published again", job.job_id)
        yield from others
        yield job

    def companions(self, lead: GenerateJob, waiting: str) -> list[GenerateJob]:
        """Waiting jobs that may run in one pipeline call with ``lead``, best first (not yet claimed)."""
        key = lead.params.batch_key()
        if self.batch_max <= 1 or key is None or lead.superres:
            return []
        ids = [raw.decode() for raw in self._redis.zrange(waiting, 0, 4 * self.batch_max - 1)]
        return [
            other
            for other in self._queued([job_id for job_id in ids if job_id != lead.job_id], waiting)
            if isinstance(other, GenerateJob) and not other.superres and other.params.batch_key() == key
        ]

    def _queued(self, job_ids: list[str], waiting: str) -> list[ModeJob]:
        """The jobs of ``job_ids`` still queued, from their records, in order; stale entries leave ``waiting``."""
        if not job_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(job_key(job_id), "status", "kind", "payload")
        jobs: list[ModeJob] = []
        stale = []
        for job_id, (status, kind, payload) in zip(job_ids, pipe.execute(), strict=True):
            if status != QUEUED.encode():
                stale.append(job_id)
            elif payload:
                job_type = GenerateJob if kind == b"generate" else SwitchJob
                jobs.append(job_type.from_dict(json.loads(payload)))
        if stale:
            self._redis.zrem(waiting, *stale)
        return jobs
