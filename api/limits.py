"""Per-key limits, kept in Redis so that every API process enforces the same ones.

- Request rate: a token bucket per key (KEY_BURST tokens, refilled at KEY_RATE a second),
  taken in one Lua script on Redis' clock, so concurrent requests through any API process
  never spend one token twice.
- Jobs queued plus running: a sorted set per key of its job IDs.  Admission (another Lua
  script) drops the IDs whose job has ended or expired, counts the rest, and adds the new
  job's ID only when the key is under KEY_JOBS_MAX.  An ID whose record is not written yet
  (the job is being admitted) counts for RESERVATION_SECONDS, so two submissions racing
  for the last place cannot both take it.  Ended jobs leave the set when the key next
  submits; the scripts that end jobs (jobs/records.py) need not know of keys.
- Jobs a day (KEY_JOBS_PER_DAY, 0: no limit): a counter per key and UTC day, raised by the
  same script when a job takes a place and lowered if its admission is then refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from api.errors import ApiError
from jobs.keys import PREFIX, job_key

RESERVATION_SECONDS = 60
TAKEN, TOO_MANY_ACTIVE, DAY_SPENT = 0, 1, 2
DAY = 86400

# KEYS: the bucket. ARGV: rate (tokens/s), burst. Returns "0" or the seconds until a token is there.
_TAKE_TOKEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""

# KEYS: the key's job set, its counter of the day. ARGV: max, the new job's ID, the job record key
# prefix, reservation seconds, jobs a day (0: no limit).
# Returns {TAKEN, 0}, {TOO_MANY_ACTIVE, active jobs} or {DAY_SPENT, jobs today}.
_RESERVE_JOB = """
local now = tonumber(redis.call('TIME')[1])
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local active = 0
for i = 1, #entries, 2 do
  local id, at = entries[i], tonumber(entries[i + 1])
  local status = redis.call('HGET', ARGV[3] .. id, 'status')
  if status == 'queued' or status == 'running' or (not status and now - at < tonumber(ARGV[4])) then
    active = active + 1
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
if active >= tonumber(ARGV[1]) then return {1, active} end
local today = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[5]) > 0 and today >= tonumber(ARGV[5]) then return {2, today} end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 2 * 86400)
return {0, 0}
"""


def bucket_key(name: str) -> str:
    return f"{PREFIX}:ratelimit:{name}"


def active_jobs_key(name: str) -> str:
    return f"{PREFIX}:keyjobs:{name}"


def day_key(name: str, now: float) -> str:
    """The key's counter of jobs on the UTC day of ``now``."""
    return f"{PREFIX}:keyday:{name}:{int(now // DAY)}"


@dataclass(frozen=True)
class LimitSettings:
    rate: float  # requests a second, refilled
    burst: int  # requests at once
    jobs_max: int  # jobs queued plus running
    retry_after: int  # seconds, when a job place is refused
    jobs_per_day: int = 0  # 0: no limit


class KeyLimits:
    def __init__(self, client: redis.Redis, settings: LimitSettings) -> None:
        self._redis = client
        self.settings = settings
        self._take_token = client.register_script(_TAKE_TOKEN)
        self._reserve_job = client.register_script(_RESERVE_JOB)

    def take_request(self, name: str) -> float:
        """0 when the key may make a request now, else the seconds until it may."""
        wait = self._take_token(keys=[bucket_key(name)], args=[self.settings.rate, self.settings.burst])
        return float(wait)

    def reserve_job(self, name: str, job_id: str, day: str) -> tuple[int, int]:
        """``(TAKEN, 0)`` when ``job_id`` took one of the key's places and counts in ``day``;
        else ``(TOO_MANY_ACTIVE, active jobs)`` or ``(DAY_SPENT, jobs that day)``."""
        args = [self.settings.jobs_max, job_id, job_key(""), RESERVATION_SECONDS, self.settings.jobs_per_day]
        outcome, count = self._reserve_job(keys=[active_jobs_key(name), day], args=args)
        return int(outcome), int(count)

    def release_job(self, name: str, job_id: str, day: str) -> None:
        pipe = self._redis.pipeline()
        pipe.zrem(active_jobs_key(name), job_id)
        pipe.decr(day)
        pipe.execute()

    @contextmanager
    def job_place(self, name: str, job_id: str) -> Iterator[None]:
        """Hold a place among the key's active jobs while the job is admitted; it is given back if
        admission raises (QUEUE_MAX's 429 among them).  No key (AUTH=off): no limit."""
        if not name:
            yield
            return
        now = time.time()
        day = day_key(name, now)
        outcome, count = self.reserve_job(name, job_id, day)
        if outcome == TOO_MANY_ACTIVE:
            raise ApiError(
                429,
                f"key {name!r} has {count} jobs queued or running (KEY_JOBS_MAX={self.settings.jobs_max}); "
                "retry when one ends",
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        if outcome == DAY_SPENT:
            raise ApiError(
                429,
                f"key {name!r} submitted {count} jobs today (KEY_JOBS_PER_DAY={self.settings.jobs_per_day}, "
                "UTC days); retry tomorrow",
                headers={"Retry-After": str(math.ceil(DAY - now % DAY))},
            )
        try:
            yield
        except BaseException:
            self.release_job(name, job_id, day)
            raise
