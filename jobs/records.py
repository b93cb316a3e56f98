"""Job records in Redis: the one source of truth for a job's state.

A record is a hash under ``dl:job:<id>`` with a TTL.  The API creates it and
reads it; the worker that holds the job's lease (tasks/lease.py) moves it
through ``running`` to a terminal state.  The terminal write is guarded by the
lease in one Lua script, so a job completes once even if its task was
delivered twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from jobs import events, index, metrics
from jobs.keys import QUEUED_COUNT, RUNNING_INDEX, done_key, job_key, lease_key

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)
_JSON_FIELDS = ("params", "progress", "result", "error", "payload")

# Each state-writing script below starts with events.LUA_PUBLISH and takes the event's keys
# (events.keys) last among its fixed KEYS: the write and its event are one round trip.
_CLAIM = (
    events.LUA_PUBLISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if ARGV[6] == '1' and status ~= 'queued' and status ~= 'running' then redis.call('ZREM', KEYS[3], ARGV[7]) end
if status == 'succeeded' or status == 'failed' or status == 'canceled' then return 0 end
local stage = redis.call('HGET', KEYS[1], 'stage')
if stage and ARGV[8] ~= '' and ARGV[8] ~= stage then return 0 end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[5]) then return -2 end
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[7])
  redis.call('ZADD', KEYS[4], redis.call('TIME')[1], ARGV[7])
end
if status == 'queued' and redis.call('HDEL', KEYS[1], 'counted') == 1 then redis.call('DECR', KEYS[5]) end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[2], 'worker', ARGV[3], 'progress', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
publish_event(KEYS[6], KEYS[7], KEYS[8], ARGV[9], ARGV[7], 'running')
if redis.call('HEXISTS', KEYS[1], 'cancel_requested') == 1 then return 2 end
return 1
"""
)

# KEYS: record, waiting set (or the record), the list to push the message on (or the record), the
# metrics hash, the job list's index and the owner's (or the record), then the count of queued jobs
# (ARGV[6] == '1': O(1) whatever the number of modes) or the queues to count; a counted
# job may name its mode's arrivals counter after the count (KEYS[8]).  The job joins the
# indexes scored by Redis' clock in milliseconds, and entries JOB_TTL (ARGV[2]) has expired leave them.
_ADMIT = """
local t = redis.call('TIME')
local waiting = 0
if ARGV[6] == '1' then
  waiting = tonumber(redis.call('GET', KEYS[7]) or '0')
else
  for i = 7, #KEYS do waiting = waiting + redis.call('LLEN', KEYS[i]) end
end
if waiting >= tonumber(ARGV[1]) then
  redis.call('HINCRBY', KEYS[4], ARGV[8], 1)
  return waiting
end
for i = 10, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'counted', '1')
  redis.call('INCR', KEYS[7])
  if KEYS[8] then redis.call('INCR', KEYS[8]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  local rank = t[1] + t[2] / 1000000 - tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], rank, ARGV[4])
  redis.call('HSET', KEYS[1], 'rank', rank)
end
if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[3], ARGV[5]) end
redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
local ms = t[1] * 1000 + math.floor(t[2] / 1000)
local expired = '(' .. (ms - tonumber(ARGV[2]) * 1000)
local last = 5
if ARGV[9] == '1' then last = 6 end
for i = 5, last do
  redis.call('ZADD', KEYS[i], ms, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', expired)
end
return -1
"""

CLAIMED, ENDED, GONE, HELD = 1, 0, -1, -2
# Claimed, but a cancel came while the job waited for this worker (its earlier holder was asked to stop
# before it died or handed the job on): the worker ends it canceled without running it.
CLAIMED_TO_STOP = 2
# Block for at most this long per call: well under redis-py's default 5 s socket timeout.
WAIT_SLICE = 2.0

# Returns 2 when a cancel was requested, so the worker learns of it with the progress write it makes anyway.
_PROGRESS = (
    events.LUA_PUBLISH
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
publish_event(KEYS[3], KEYS[4], KEYS[5], ARGV[3], ARGV[4], 'progress')
if redis.call('HEXISTS', KEYS[1], 'cancel_requested') == 1 then return 2 end
return 1
"""
)

# The lease holder's terminal write; it gives the lease up (and leaves the running index) and counts the
# job for /metrics in the same step, and answers what metrics.log_ended logs, or 0 when it wrote nothing.
_FINISH = (
    events.LUA_PUBLISH
    + metrics.LUA_COUNT_END
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[7])
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'canceled' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finished_at', ARGV[3], ARGV[4], ARGV[5])
redis.call('HINCRBY', KEYS[1], 'completions', 1)
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[6])
publish_event(KEYS[5], KEYS[6], KEYS[7], ARGV[8], ARGV[7], ARGV[2])
return count_end(KEYS[8], KEYS[1], ARGV[2])
"""
)

# The lease holder moves the job on to its next stage: the stage's message is pushed as the lease is given up.
_HAND_OFF = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'stage', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('LPUSH', KEYS[3], ARGV[3])
return 1
"""

# A turn job left running with no lease and no stage beyond generation (its worker died, or Redis
# lost the lease) goes back to its mode's waiting set at its old rank, with a message of its own, counted
# against QUEUE_MAX again until it is claimed.
_REQUEUE = (
    events.LUA_PUBLISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' or redis.call('HEXISTS', KEYS[1], 'stage') == 1 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local rank = redis.call('HGET', KEYS[1], 'rank') or redis.call('TIME')[1]
redis.call('HSET', KEYS[1], 'status', 'queued', 'progress', 'null', 'counted', '1')
redis.call('HDEL', KEYS[1], 'worker', 'started_at')
redis.call('INCR', KEYS[6])
redis.call('ZADD', KEYS[3], rank, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('LPUSH', KEYS[5], ARGV[2])
publish_event(KEYS[7], KEYS[8], KEYS[9], ARGV[3], ARGV[1], 'queued')
return 1
"""
)

# A job nobody is working on (queued, or running with no live lease: between the generation and its
# super-resolution stage, or its worker died) ends canceled at once, answering what metrics.log_ended
# logs; a job a worker holds is flagged for the worker to stop at its next step.
_CANCEL = (
    events.LUA_PUBLISH
    + metrics.LUA_COUNT_END
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'succeeded' or status == 'failed' or status == 'canceled' then return 0 end
if status == 'running' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'cancel_requested', ARGV[1])
  return 2
end
local message = ARGV[2]
if status == 'running' then message = ARGV[3] end
redis.call('HSET', KEYS[1], 'status', 'canceled', 'finished_at', ARGV[1], 'error', message)
if ARGV[5] == '1' then redis.call('ZREM', KEYS[4], ARGV[6]) end
redis.call('ZREM', KEYS[5], ARGV[6])
if status == 'queued' and redis.call('HDEL', KEYS[1], 'counted') == 1 then redis.call('DECR', KEYS[6]) end
redis.call('RPUSH', KEYS[3], 'canceled')
redis.call('EXPIRE', KEYS[3], ARGV[4])
publish_event(KEYS[7], KEYS[8], KEYS[9], ARGV[7], ARGV[6], 'canceled')
return count_end(KEYS[10], KEYS[1], 'canceled')
"""
)
CANCELED_NOW, CANCEL_REQUESTED = 1, 2  # what cancel() did, besides ENDED and GONE
STEP_CANCELED = 2  # what progress() returns when the job should stop


@dataclass(frozen=True)
class QueuedMessage:
    """A Celery task message as kombu's Redis transport keeps it (jobs/producer.py), and the
    list it goes on, for the admit step to push along with the record."""

    queue: str
    envelope: str


@dataclass(frozen=True)
class Turn:
    """How a generation or switch job waits for its turn: in its mode's waiting set
    (jobs/keys.py), ahead by ``head_start`` seconds (priority x PRIORITY_AGING), with
    the task payload that any delivery of the mode's queue may run it from
    (tasks/turns.py)."""

    waiting: str
    head_start: float
    payload: dict[str, Any]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class JobRecords:
    """Create, read and move job records; every write names the job ID."""

    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self._redis = client
        self._ttl = ttl
        self._claim = client.register_script(_CLAIM)
        self._admit = client.register_script(_ADMIT)
        self._progress = client.register_script(_PROGRESS)
        self._cancel = client.register_script(_CANCEL)
        self._finish = client.register_script(_FINISH)
        self._hand_off = client.register_script(_HAND_OFF)
        self._requeue = client.register_script(_REQUEUE)

    def create(
        self,
        job_id: str,
        kind: str,
        mode: str,
        params: dict[str, Any],
        queues: list[str],
        queue_max: int,
        turn: Turn | None = None,
        message: QueuedMessage | None = None,
        counted: bool = False,
        owner: str = "",
        arrivals: str = "",
    ) -> tuple[dict[str, Any] | None, int]:
        """Write a ``queued`` record and push its ``message``, unless ``queue_max`` jobs wait in
        ``queues``, in one atomic step: no job is recorded without its message, nor queued without its record.

        A ``counted`` job is counted in QUEUED_COUNT instead, from its admission until it is claimed or
        canceled, and admitted while fewer than ``queue_max`` counted jobs wait (one read, whatever
        the number of queues).

        With a ``turn`` the job joins its mode's waiting set in the same step, scored by
        Redis' clock (so every host ages jobs alike) less its head start.
        Returns ``(record, -1)`` when created, ``(None, waiting)`` when the queues are full.
        ``owner`` is the name of the API key that submitted it (api/auth.py), "" under AUTH=off.
        ``arrivals``: a counter a ``counted`` job adds 1 to when admitted (its mode's, jobs/keys.py).
        """
        record = {
            "id": job_id,
            "kind": kind,
            "status": QUEUED,
            "mode": mode,
            "params": params,
            "created_at": now_iso(),
            "attempts": 0,
            "completions": 0,
            **({"waiting": turn.waiting, "payload": turn.payload} if turn else {}),
            **({"owner": owner} if owner else {}),
        }
        fields = [item for pair in _encode(record).items() for item in pair]
        offset = repr(turn.head_start) if turn else ""
        keys = [
            job_key(job_id),
            turn.waiting if turn else job_key(job_id),
            message.queue if message else job_key(job_id),
            metrics.METRICS_KEY,
            index.ALL_JOBS,
            index.owner_index(owner) if owner else job_key(job_id),
            *([QUEUED_COUNT, *([arrivals] if arrivals else [])] if counted else queues),
        ]
        args = [
            queue_max,
            self._ttl,
            offset,
            job_id,
            message.envelope if message else "",
            "1" if counted else "0",
            metrics.counter_field("jobs_admitted", kind, mode),
            metrics.counter_field("jobs_refused", kind, mode),
            "1" if owner else "0",
            *fields,
        ]
        depth = int(self._admit(keys=keys, args=args))
        return (record if depth < 0 else None), depth

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self._redis.hgetall(job_key(job_id))
        return _decode(raw) if raw else None

    def get_many(self, job_ids: list[str]) -> list[dict[str, Any] | None]:
        """The records of ``job_ids`` in one round trip, None for those that expired."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(job_key(job_id))
        return [_decode(raw) if raw else None for raw in pipe.execute()]

    def claim(
        self, job_id: str, token: str, worker: str, lease_ttl: float, waiting: str | None = None, stage: str = ""
    ) -> int:
        """Take the job's lease as ``token`` and mark it running (leaving ``waiting``), in one atomic step.

        A claim for a ``stage`` (``generate``) finds the job ENDED once it moved on to
        another stage (hand_off moves it to ``superres``). Returns CLAIMED, CLAIMED_TO_STOP (claimed,
        with a cancel already requested), ENDED (the job, or its stage, already ended), GONE (its
        record expired) or HELD (another worker holds the lease).
        """
        keys = [job_key(job_id), lease_key(job_id), waiting or lease_key(job_id), RUNNING_INDEX, QUEUED_COUNT]
        args = [token, now_iso(), worker, "null", int(lease_ttl * 1000), "1" if waiting else "0", job_id, stage]
        return int(self._claim(keys=[*keys, *events.keys(job_id)], args=[*args, events.message(RUNNING)]))

    def progress(self, job_id: str, token: str, step: int, total: int) -> int:
        """Record step ``step`` of ``total``; returns STEP_CANCELED when a cancel was requested."""
        return int(
            self._progress(
                keys=[job_key(job_id), lease_key(job_id), *events.keys(job_id)],
                args=[
                    token,
                    json.dumps({"step": step, "total": total}),
                    events.message("progress", step=step, total=total),
                    job_id,
                ],
            )
        )

    def succeed(self, job_id: str, token: str, result: dict[str, Any]) -> bool:
        return self._end(job_id, token, SUCCEEDED, "result", result)

    def fail(self, job_id: str, token: str, message: str) -> bool:
        return self._end(job_id, token, FAILED, "error", {"message": message})

    def end_canceled(self, job_id: str, token: str, message: str) -> bool:
        """End a job its worker stopped on request, guarded by the lease like any terminal write."""
        return self._end(job_id, token, CANCELED, "error", {"message": message})

    def cancel(self, job_id: str, waiting: str | None = None) -> int:
        """Cancel the job (leaving ``waiting``, its mode's waiting set): CANCELED_NOW,
        CANCEL_REQUESTED (its worker stops at the next step), ENDED or GONE."""
        answer = self._cancel(
            keys=[
                job_key(job_id),
                lease_key(job_id),
                done_key(job_id),
                waiting or done_key(job_id),
                RUNNING_INDEX,
                QUEUED_COUNT,
                *events.keys(job_id),
                metrics.METRICS_KEY,
            ],
            args=[
                now_iso(),
                json.dumps({"message": "canceled on request before it started"}),
                json.dumps({"message": "canceled on request while no worker held it"}),
                self._ttl,
                "1" if waiting else "0",
                job_id,
                events.message(CANCELED),
            ],
        )
        if isinstance(answer, list):
            metrics.log_ended(job_id, CANCELED, answer)
            return CANCELED_NOW
        return int(answer)

    def hand_off(self, job_id: str, token: str, stage: str, message: QueuedMessage) -> bool:
        """Move the job on to ``stage`` in one atomic step: mark the stage (deliveries of its earlier
        stage no longer run it), give up the lease ``token`` holds and push the stage's ``message``.
        False when the lease was lost: another worker owns the job."""
        return bool(
            self._hand_off(
                keys=[job_key(job_id), lease_key(job_id), message.queue, RUNNING_INDEX],
                args=[token, stage, message.envelope, job_id],
            )
        )

    def requeue(self, job_id: str, waiting: str, message: QueuedMessage) -> bool:
        """Put a turn job that is running with no lease (and not handed to a later stage) back in
        its ``waiting`` set at its old rank and push ``message`` for it, in one atomic step.
        False when it needs no requeue: someone holds it, or it ended or moved on (it then
        leaves the running index)."""
        keys = [job_key(job_id), lease_key(job_id), waiting, RUNNING_INDEX, message.queue, QUEUED_COUNT]
        args = [job_id, message.envelope, events.message(QUEUED, requeued=True)]
        return bool(self._requeue(keys=[*keys, *events.keys(job_id)], args=args))

    def running(self, claimed_before: float) -> list[str]:
        """Turn jobs claimed before ``claimed_before`` (epoch seconds) and not yet ended or handed on."""
        return [raw.decode() for raw in self._redis.zrangebyscore(RUNNING_INDEX, "-inf", claimed_before)]

    def _end(self, job_id: str, token: str, status: str, field: str, value: dict[str, Any]) -> bool:
        keys = [job_key(job_id), lease_key(job_id), done_key(job_id), RUNNING_INDEX, *events.keys(job_id)]
        args = [token, status, now_iso(), field, json.dumps(value), self._ttl, job_id, events.message(status)]
        counted = self._finish(keys=[*keys, metrics.METRICS_KEY], args=args)
        if not counted:
            return False
        metrics.log_ended(job_id, status, counted)
        return True

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Block until the job ends or ``timeout`` seconds pass; return its record."""
        deadline = time.monotonic() + timeout
        while True:
            # The worker pushes one entry per terminal write and the list outlives
            # the wait; rotate, do not pop, so every waiter on the job wakes up.
            left = deadline - time.monotonic()
            block = max(0.01, min(left, WAIT_SLICE))
            # The record's read goes in the same round trip: Redis runs it once the BLMOVE returns.
            pipe = self._redis.pipeline(transaction=False)
            pipe.blmove(done_key(job_id), done_key(job_id), block, "LEFT", "RIGHT")
            pipe.hgetall(job_key(job_id))
            raw = pipe.execute()[1]
            record = _decode(raw) if raw else None
            if record is None or record["status"] in TERMINAL or time.monotonic() >= deadline:
                return record


def _encode(record: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if k in _JSON_FIELDS else str(v) for k, v in record.items()}


def _decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key_bytes, value_bytes in raw.items():
        key, value = key_bytes.decode(), value_bytes.decode()
        if key in _JSON_FIELDS:
            record[key] = json.loads(value)
        elif key in ("attempts", "completions", "deliveries"):
            record[key] = int(value)
        else:
            record[key] = value
    return record
