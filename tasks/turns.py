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

import logging
from collections.abc import Callable, Iterator

import redis

from jobs.keys import lease_key
from jobs.messages import GenerateJob, SwitchJob
from jobs.records import QUEUED, RUNNING, JobRecords

log = logging.getLogger(__name__)
LOOK_AHEAD = 5  # first-ranked jobs tried in turn when other workers claim them first

ModeJob = GenerateJob | SwitchJob


class Turns:
    def __init__(
        self,
        client: redis.Redis,
        records: JobRecords,
        republish: Callable[[ModeJob], None],
        batch_max: int,
    ) -> None:
        self._redis = client
        self._records = records
        self._republish = republish
        self.batch_max = batch_max

    def leads(self, job: ModeJob, waiting: str) -> Iterator[ModeJob]:
        """The jobs this delivery of ``job`` should try to run, best first; ``job`` itself last.

        Other jobs are to be claimed once each (another worker may win them); ``job``
        itself is claimed as any delivery claims its job, waiting for a live holder.
        """
        record = self._records.get(job.job_id)
        status = record["status"] if record else None
        if status == RUNNING and not self._redis.exists(lease_key(job.job_id)):
            yield job  # its worker died: take it over
            return
        others = [other for other in self._first(waiting) if other.job_id != job.job_id]
        if status == RUNNING and others:
            self._republish(job)
            log.info("job %s: runs in a batch elsewhere; its delivery was published again", job.job_id)
        yield from self._ranked_before(job, waiting, others, status)
        yield job

    def companions(self, lead: GenerateJob, waiting: str) -> list[GenerateJob]:
        """Waiting jobs that may run in one pipeline call with ``lead``, best first (not yet claimed)."""
        key = lead.params.batch_key()
        if self.batch_max <= 1 or key is None or lead.superres:
            return []
        found = []
        for other in self._first(waiting, limit=4 * self.batch_max):
            if (
                isinstance(other, GenerateJob)
                and other.job_id != lead.job_id
                and not other.superres
                and other.params.batch_key() == key
            ):
                found.append(other)
        return found

    def _ranked_before(self, job: ModeJob, waiting: str, others: list[ModeJob], status: str | None) -> list[ModeJob]:
        if status != QUEUED:
            return others  # its job ended or expired: the delivery is a free turn
        score = self._redis.zscore(waiting, job.job_id)
        if score is None:
            return others
        ahead = {m.decode() for m in self._redis.zrangebyscore(waiting, "-inf", score)}
        return [other for other in others if other.job_id in ahead]

    def _first(self, waiting: str, limit: int = LOOK_AHEAD) -> list[ModeJob]:
        """The first-ranked waiting jobs that can be run from their records; stale entries are dropped."""
        jobs: list[ModeJob] = []
        for raw in self._redis.zrange(waiting, 0, limit - 1):
            job_id = raw.decode()
            record = self._records.get(job_id)
            if record is None or record["status"] != QUEUED:
                self._redis.zrem(waiting, job_id)
                continue
            payload = record.get("payload")
            if payload:
                kind = GenerateJob if record["kind"] == "generate" else SwitchJob
                jobs.append(kind.from_dict(payload))
        return jobs
