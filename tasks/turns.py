"""Whose turn it is: which of a mode's waiting jobs a delivery runs, and which run with it.

A generation or switch job's Celery message is a turn on its mode's queue, not an
order for that one job: the delivery runs the job that the mode's waiting set ranks
first (submit time less its priority head start, jobs/records.py), and, when that is
a plain txt2img job, up to BATCH_MAX - 1 compatible waiting jobs with it in one
pipeline call.  Every job keeps its own lease, progress, result and record.

The invariant.  A delivery of mode m never ends while m's waiting set holds a job
that no live lease runs and no message will deliver.  It holds because a mode never
has fewer pending deliveries than waiting jobs:
- admission adds a job and its message in one step;
- every delivery takes one turn before it ends: it claims a waiting job (one atomic
  script takes the job out of the set and takes its lease), or it reads the set
  empty of jobs ranked no later than its own.  A claim lost to another worker, or a
  delivered job found ended or held, sends the delivery back to read the set again,
  never home (the race of two workers on one mode's turns); a Redis error before the
  claim is waited out, never ends the delivery (tasks/redis_wait.py);
- a delivery whose own job runs elsewhere either waits for that holder (the message
  stays the job's guard) or, when other jobs wait, publishes the job's message again
  before it takes one of them.
A job whose worker died keeps a message that takes it over once its lease expires:
its own, waiting on the holder, or the published copy.  Whatever else leaves a job
running with no lease and no message (a Redis restart that lost the lease, a holder
killed while it ran another delivery's job) is found by the sweeper of orphans
(tasks/orphans.py), which puts it back in its waiting set with a new message; a
message lost on its way to a worker (kombu pops it, then records it unacked) leaves
its mode's waiting jobs short of a delivery, which the same sweep gives back
(tasks/stranded.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis

from jobs.keys import job_key, lease_key
from jobs.messages import GenerateJob, SwitchJob
from jobs.records import RUNNING

log = logging.getLogger(__name__)
LOOK_AHEAD = 5  # first-ranked jobs read per look at the waiting set

ModeJob = GenerateJob | SwitchJob

# The kind and payload of each of ``ids`` still queued, in order; entries no longer queued leave the
# waiting set in the same step (a requeue cannot slip between the read and the removal).  The records
# are found by their key prefix, not passed as KEYS: which jobs they are is known only inside a script.
_LUA_QUEUED = """
local function queued_jobs(ids, prefix, waiting)
  local out = {}
  for _, id in ipairs(ids) do
    local status, kind, payload = unpack(redis.call('HMGET', prefix .. id, 'status', 'kind', 'payload'))
    if status == 'queued' and payload then
      out[#out + 1] = {kind, payload}
    elseif status ~= 'queued' then
      redis.call('ZREM', waiting, id)
    end
  end
  return out
end
"""

# KEYS: the delivered job's record, its lease, its mode's waiting set. ARGV: job id, look-ahead, '1' to
# count this delivery in the record, the prefix of job record keys. Returns its status, whether it is
# leased, and the first waiting jobs ranked no later than it (all of them when it is not waiting) that
# are still queued, as queued_jobs gives them: one round trip for the whole look.
_LOOK = (
    _LUA_QUEUED
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status and ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'deliveries', 1) end
local leased = redis.call('EXISTS', KEYS[2])
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
local first
if status == 'queued' and score then
  first = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', score, 'LIMIT', 0, ARGV[2])
else
  first = redis.call('ZRANGE', KEYS[3], 0, ARGV[2] - 1)
  if status == 'queued' then table.insert(first, ARGV[1]) end  -- queued outside the set: claim it all the same
end
return {status or '', leased, queued_jobs(first, ARGV[4], KEYS[3])}
"""
)

# KEYS: a waiting set. ARGV: the prefix of job record keys, how many of the first-ranked jobs to read, and
# the job to leave out (the lead). Returns the others still queued, as queued_jobs gives them.
_COMPANIONS = (
    _LUA_QUEUED
    + """
local ids = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, ARGV[2] - 1)) do
  if id ~= ARGV[3] then ids[#ids + 1] = id end
end
return queued_jobs(ids, ARGV[1], KEYS[1])
"""
)


@dataclass(frozen=True)
class Look:
    """One read of a delivery's turn: its job's status, and the waiting jobs it may claim."""

    status: str
    leased: bool
    first: list[ModeJob]  # still queued, best first; the delivered job among them when it waits

    @property
    def orphaned(self) -> bool:
        """The delivered job runs with no lease: its worker died, so this delivery takes it over."""
        return self.status == RUNNING and not self.leased

    @property
    def held(self) -> bool:
        """A live worker runs the delivered job."""
        return self.status == RUNNING and self.leased


class Turns:
    def __init__(
        self,
        client: redis.Redis,
        republish: Callable[[ModeJob], None],
        batch_max: int,
        gate: Callable[[str], None] | None = None,
    ) -> None:
        """``gate`` (tests only, tasks/gate.py) is called with the job id after a delivery's first read."""
        self._redis = client
        self._gate = gate
        self._republish = republish
        self._look = client.register_script(_LOOK)
        self._companions = client.register_script(_COMPANIONS)
        self.batch_max = batch_max

    def look(self, job: ModeJob, waiting: str, count: bool) -> Look:
        """Read the turn of a delivery of ``job`` in one round trip (counting the delivery when ``count``)."""
        status, leased, first = self._look(
            keys=[job_key(job.job_id), lease_key(job.job_id), waiting],
            args=[job.job_id, LOOK_AHEAD, "1" if count else "0", job_key("")],
        )
        look = Look(status.decode(), bool(leased), _jobs(first))
        if count and self._gate:
            self._gate(job.job_id)
        return look

    def publish_again(self, job: ModeJob) -> None:
        """Give ``job`` a new message, so it keeps a guard while its delivery runs another job."""
        self._republish(job)
        log.info("job %s: runs elsewhere; its delivery was published again", job.job_id)

    def companions(self, lead: GenerateJob, waiting: str) -> list[GenerateJob]:
        """Waiting jobs that may run in one pipeline call with ``lead``, best first (not yet claimed)."""
        key = lead.params.batch_key()
        if self.batch_max <= 1 or key is None or lead.superres:
            return []
        found = self._companions(keys=[waiting], args=[job_key(""), 4 * self.batch_max, lead.job_id])
        return [
            other
            for other in _jobs(found)
            if isinstance(other, GenerateJob) and not other.superres and other.params.batch_key() == key
        ]


def _jobs(found: list[list[bytes]]) -> list[ModeJob]:
    """The jobs a script's queued_jobs gave, as (kind, payload) pairs."""
    return [
        (GenerateJob if kind == b"generate" else SwitchJob).from_dict(json.loads(payload)) for kind, payload in found
    ]
