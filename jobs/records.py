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
from datetime import UTC, datetime
from typing import Any

import redis

from jobs.keys import done_key, job_key, lease_key

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)
_JSON_FIELDS = ("params", "progress", "result", "error")

_START = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'succeeded' or status == 'failed' or status == 'canceled' then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -2 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[2], 'worker', ARGV[3], 'progress', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 1
"""

_PROGRESS = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
"""

_FINISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'succeeded' or status == 'failed' or status == 'canceled' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finished_at', ARGV[3], ARGV[4], ARGV[5])
redis.call('HINCRBY', KEYS[1], 'completions', 1)
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[6])
return 1
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class JobRecords:
    """Create, read and move job records; every write names the job ID."""

    def __init__(self, client: redis.Redis, ttl: int) -> None:
        self._redis = client
        self._ttl = ttl
        self._start = client.register_script(_START)
        self._progress = client.register_script(_PROGRESS)
        self._finish = client.register_script(_FINISH)

    def create(self, job_id: str, kind: str, mode: str, params: dict[str, Any]) -> dict[str, Any]:
        record = {
            "id": job_id,
            "kind": kind,
            "status": QUEUED,
            "mode": mode,
            "params": params,
            "created_at": now_iso(),
            "attempts": 0,
            "completions": 0,
        }
        key = job_key(job_id)
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping=_encode(record))
        pipe.expire(key, self._ttl)
        pipe.execute()
        return record

    def delete(self, job_id: str) -> None:
        self._redis.delete(job_key(job_id))

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self._redis.hgetall(job_key(job_id))
        return _decode(raw) if raw else None

    def start(self, job_id: str, token: str, worker: str) -> int:
        """Mark running under the lease ``token``.

        Returns 1 when started, 0 when the job already ended, -1 when the
        record is gone (expired), -2 when the lease is not ours.
        """
        return int(
            self._start(
                keys=[job_key(job_id), lease_key(job_id)],
                args=[token, now_iso(), worker, json.dumps(None)],
            )
        )

    def progress(self, job_id: str, token: str, step: int, total: int) -> None:
        self._progress(
            keys=[job_key(job_id), lease_key(job_id)],
            args=[token, json.dumps({"step": step, "total": total})],
        )

    def succeed(self, job_id: str, token: str, result: dict[str, Any]) -> bool:
        return self._end(job_id, token, SUCCEEDED, "result", result)

    def fail(self, job_id: str, token: str, message: str) -> bool:
        return self._end(job_id, token, FAILED, "error", {"message": message})

    def _end(self, job_id: str, token: str, status: str, field: str, value: dict[str, Any]) -> bool:
        done = self._finish(
            keys=[job_key(job_id), lease_key(job_id), done_key(job_id)],
            args=[token, status, now_iso(), field, json.dumps(value), self._ttl],
        )
        return bool(done)

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Block until the job ends or ``timeout`` seconds pass; return its record."""
        record = self.get(job_id)
        deadline = time.monotonic() + timeout
        while record is not None and record["status"] not in TERMINAL:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # The worker pushes one entry per terminal write; peek, do not pop,
            # so any number of waiters on the same job all wake up.
            self._redis.blmove(done_key(job_id), done_key(job_id), min(left, 5.0), "LEFT", "RIGHT")
            record = self.get(job_id)
        return record


def _encode(record: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v) if k in _JSON_FIELDS else str(v) for k, v in record.items()}


def _decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key_bytes, value_bytes in raw.items():
        key, value = key_bytes.decode(), value_bytes.decode()
        if key in _JSON_FIELDS:
            record[key] = json.loads(value)
        elif key in ("attempts", "completions"):
            record[key] = int(value)
        else:
            record[key] = value
    return record
