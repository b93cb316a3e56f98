"""The fleet's job figures in Redis, written where jobs change state and read by the API's /metrics.

Every API process and worker adds to the same hash (``dl:metrics``), so the figures are the
fleet's, whichever gunicorn process serves a scrape (api/metrics.py turns them into
Prometheus families at scrape time; prometheus-client's per-process registry would count
only the jobs that one process saw).  Fields:

- ``c|<name>|<label>|<label>...``: a counter;
- ``h|<name>|<mode>|<bucket upper bound>``: how many observations fell in that bucket
  (not cumulative; the reader sums them), with ``...|sum`` and ``...|count`` beside them.

A terminal write counts once: the writer that ends a job (the lease holder's Lua script,
jobs/records.py, or the API's cancel of a job nobody holds) is the only one that calls
``ended``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import redis

from jobs.keys import PREFIX, job_key

log = logging.getLogger(__name__)

METRICS_KEY = f"{PREFIX}:metrics"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
INF = "+Inf"
SEP = "|"


def counter_field(name: str, *labels: str) -> str:
    return SEP.join(("c", name, *labels))


def bucket_of(seconds: float) -> str:
    """The upper bound of the first bucket that holds ``seconds``."""
    return next((repr(bound) for bound in BUCKETS if seconds <= bound), INF)


def observe(pipe: redis.client.Pipeline, name: str, mode: str, seconds: float) -> None:
    """Add one observation of ``seconds`` to histogram ``name`` of ``mode``."""
    base = SEP.join(("h", name, mode))
    pipe.hincrby(METRICS_KEY, f"{base}{SEP}{bucket_of(seconds)}", 1)
    pipe.hincrbyfloat(METRICS_KEY, f"{base}{SEP}sum", seconds)
    pipe.hincrby(METRICS_KEY, f"{base}{SEP}count", 1)


# What ``ended`` reads of a record; the terminal write (jobs/records.py) returns the same fields.
ENDED_FIELDS = ("kind", "mode", "worker", "created_at", "started_at", "finished_at", "result")


def ended(client: redis.Redis, job_id: str, status: str, fields: list[bytes | None] | None = None) -> dict[str, Any]:
    """Count a job that has just ended ``status`` and time its wait and run; returns what was recorded.

    ``fields`` are the record's ENDED_FIELDS when the caller has them already, else they are read
    (one round trip). The figures go in one pipeline, and the transition is logged in one line.
    Figures are best effort: a Redis error here is logged, never raised, so it cannot fail a job
    that has already ended.
    """
    try:
        if fields is None:
            fields = client.hmget(job_key(job_id), *ENDED_FIELDS)
        kind, mode, worker, created, started, finished, result = (value.decode() if value else "" for value in fields)
        times = durations(created, started, finished)
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(METRICS_KEY, counter_field("jobs_ended", kind, mode, status), 1)
        for name, seconds in times.items():
            observe(pipe, name, mode or kind, seconds)
        details = json.loads(result) if result else {}
        passes = superres_passes(details)
        if passes:
            pipe.hincrby(METRICS_KEY, counter_field("superres_passes"), passes)
        if "load_seconds" in details:
            observe(pipe, "load", mode, float(details["load_seconds"]))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("job %s: its %s end was not counted in the metrics: %s", job_id, status, exc)
        return {}
    figures = " ".join(f"{name}={seconds:.3f}s" for name, seconds in times.items())
    log.info("job %s: ended %s kind=%s mode=%s worker=%s %s", job_id, status, kind, mode or "-", worker or "-", figures)
    return {"kind": kind, "mode": mode, "worker": worker, **times}


def durations(created: str, started: str, finished: str) -> dict[str, float]:
    """Seconds waiting in the queue, running (the last attempt) and end to end, from the record's ISO times."""
    times: dict[str, float] = {}
    if not (created and finished):
        return times
    t0, t2 = datetime.fromisoformat(created), datetime.fromisoformat(finished)
    times["end_to_end"] = max(0.0, (t2 - t0).total_seconds())
    if started:
        t1 = datetime.fromisoformat(started)
        times["queue_wait"] = max(0.0, (t1 - t0).total_seconds())
        times["run"] = max(0.0, (t2 - t1).total_seconds())
    return times


def superres_passes(result: dict[str, Any]) -> int:
    """The SR passes a finished job's result reports (standalone SR jobs, or generation + SR)."""
    details = result.get("superres") if isinstance(result.get("superres"), dict) else result
    return int(details.get("passes", 0))
