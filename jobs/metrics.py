"""The fleet's job figures in Redis, written where jobs change state and read by the API's /metrics.

Every API process and worker adds to the same hash (``dl:metrics``), so the figures are the
fleet's, whichever gunicorn process serves a scrape (api/metrics.py turns them into
Prometheus families at scrape time; prometheus-client's per-process registry would count
only the jobs that one process saw).  Fields:

- ``c|<name>|<label>|<label>...``: a counter;
- ``h|<name>|<mode>|<bucket upper bound>``: how many observations fell in that bucket
  (not cumulative; the reader sums them), with ``...|sum`` and ``...|count`` beside them.

A terminal write counts once: the script that ends a job (the lease holder's, jobs/records.py,
or the API's cancel of a job nobody holds) counts it in the same step (``LUA_COUNT_END``).
"""

from __future__ import annotations

import logging

from jobs.keys import PREFIX

log = logging.getLogger(__name__)

METRICS_KEY = f"{PREFIX}:metrics"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
INF = "+Inf"
SEP = "|"


def counter_field(name: str, *labels: str) -> str:
    return SEP.join(("c", name, *labels))


def _lua_buckets() -> str:
    return "{" + ", ".join(f"{{{bound!r}, '{bound!r}'}}" for bound in BUCKETS) + "}"


# A terminal write's script (jobs/records.py) defines and calls ``count_end`` after its write: the
# count, the times and the write are one round trip, and only the writer that ended the job counts it.
# The times are the record's own ISO stamps (``now_iso``: UTC, milliseconds), read as epoch seconds.
# Returns kind, mode, worker and the seconds (as text, "" when a stamp is missing) for the log line.
LUA_COUNT_END = (
    f"""
local BUCKETS = {_lua_buckets()}
local INF = '{INF}'
"""
    + """
local function epoch(iso)
  if not iso then return nil end
  local y, mo, d, h, mi, s = string.match(iso, '^(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d.]+)')
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + tonumber(d) - 1
  local days = era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

local function observe(metrics, name, label, seconds)
  local base = 'h|' .. name .. '|' .. label .. '|'
  local bucket = INF
  for _, b in ipairs(BUCKETS) do
    if seconds <= b[1] then bucket = b[2] break end
  end
  redis.call('HINCRBY', metrics, base .. bucket, 1)
  redis.call('HINCRBYFLOAT', metrics, base .. 'sum', string.format('%.6f', seconds))
  redis.call('HINCRBY', metrics, base .. 'count', 1)
end

local function count_end(metrics, record, status)
  local f = redis.call('HMGET', record, 'kind', 'mode', 'worker', 'created_at', 'started_at', 'finished_at', 'result')
  local kind, mode, worker = f[1] or '', f[2] or '', f[3] or ''
  redis.call('HINCRBY', metrics, 'c|jobs_ended|' .. kind .. '|' .. mode .. '|' .. status, 1)
  local label = mode
  if label == '' then label = kind end
  local created, started, finished = epoch(f[4]), epoch(f[5]), epoch(f[6])
  local times = {'', '', ''}
  if created and finished then
    local order = {{'end_to_end', created, finished}}
    if started then
      order[2] = {'queue_wait', created, started}
      order[3] = {'run', started, finished}
    end
    for i, t in ipairs(order) do
      local seconds = math.max(0, t[3] - t[2])
      observe(metrics, t[1], label, seconds)
      times[i] = string.format('%.3f', seconds)
    end
  end
  local ok, details = pcall(cjson.decode, f[7] or 'null')
  if ok and type(details) == 'table' then
    local sr = details
    if type(details.superres) == 'table' then sr = details.superres end
    local passes = tonumber(sr.passes)
    if passes and passes > 0 then redis.call('HINCRBY', metrics, 'c|superres_passes', passes) end
    local load = tonumber(details.load_seconds)
    if load then observe(metrics, 'load', mode, load) end
  end
  return {kind, mode, worker, times[1], times[2], times[3]}
end
"""
)
TIMES = ("end_to_end", "queue_wait", "run")


def log_ended(job_id: str, status: str, counted: list[bytes]) -> None:
    """The job's transition to ``status`` in one line, from what ``count_end`` answered."""
    kind, mode, worker, *seconds = (value.decode() for value in counted)
    figures = " ".join(f"{name}={took}s" for name, took in zip(TIMES, seconds, strict=True) if took)
    log.info("job %s: ended %s kind=%s mode=%s worker=%s %s", job_id, status, kind, mode or "-", worker or "-", figures)
