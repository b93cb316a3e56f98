"""``GET /metrics``: the fleet's figures in Prometheus' text format, read from Redis at scrape time.

Counters and latency histograms come from the hash that API processes and workers add to
(jobs/metrics.py); waiting jobs per mode from the modes' waiting sets; live workers and
their counters from the workers' heartbeats.  Nothing is kept in the serving process, so
every gunicorn process answers the same figures.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from api.openapi import documented
from api.services import Services, services
from jobs.keys import WORKERS_PATTERN
from jobs.metrics import BUCKETS, INF, METRICS_KEY, SEP
from jobs.superres import SUPERRES_QUEUE

bp = Blueprint("metrics", __name__)

COUNTERS = {
    "jobs_admitted": ("Jobs accepted, by kind and mode.", ["kind", "mode"]),
    "jobs_refused": ("Submissions refused with 429 because too many jobs wait, by kind and mode.", ["kind", "mode"]),
    "jobs_ended": ("Jobs ended, by kind, mode and status (succeeded, failed, canceled).", ["kind", "mode", "status"]),
    "superres_passes": ("Super-resolution passes run by jobs that succeeded.", []),
}
HISTOGRAMS = {
    "queue_wait": "Seconds from submission to the start of the job's last attempt, by mode.",
    "run": "Seconds the job's last attempt ran, by mode.",
    "end_to_end": "Seconds from submission to the end, by mode.",
    "load": "Seconds a mode switch job took to load its mode, by mode.",
}
HEARTBEAT_FIELDS = ("backend", "state", "serving", "switches", "memory")


class FleetCollector:
    """A prometheus-client collector that reads the fleet's figures from Redis on every scrape."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def collect(self) -> Iterator[Metric]:
        raw = {k.decode(): v.decode() for k, v in self._svc.redis.hgetall(METRICS_KEY).items()}
        yield from counters(raw)
        yield from histograms(raw)
        yield self._waiting()
        yield from workers(self._heartbeats())

    def _waiting(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("dreamlab_jobs_waiting", "Jobs waiting for a worker, by mode.", labels=["mode"])
        for mode, depth in self._svc.queue_depths().items():
            family.add_metric([mode], depth)
        family.add_metric([SUPERRES_QUEUE], self._svc.redis.llen(SUPERRES_QUEUE))
        return family

    def _heartbeats(self) -> list[dict[str, str]]:
        client = self._svc.redis
        keys = list(client.scan_iter(WORKERS_PATTERN, count=1000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, *HEARTBEAT_FIELDS)
        beats = []
        for values in pipe.execute():
            if values[0] is not None:
                beats.append({k: (v or b"").decode() for k, v in zip(HEARTBEAT_FIELDS, values, strict=True)})
        return beats


def counters(raw: dict[str, str]) -> Iterator[CounterMetricFamily]:
    for name, (help_text, labels) in COUNTERS.items():
        family = CounterMetricFamily(f"dreamlab_{name}", help_text, labels=labels)
        prefix = f"c{SEP}{name}"
        for field, value in sorted(raw.items()):
            parts = field.split(SEP)
            if SEP.join(parts[:2]) == prefix and len(parts) == 2 + len(labels):
                family.add_metric(parts[2:], float(value))
        yield family


def histograms(raw: dict[str, str]) -> Iterator[HistogramMetricFamily]:
    for name, help_text in HISTOGRAMS.items():
        family = HistogramMetricFamily(f"dreamlab_job_{name}_seconds", help_text, labels=["mode"])
        buckets: dict[str, Counter[str]] = defaultdict(Counter)
        sums: dict[str, float] = {}
        for field, value in raw.items():
            kind, metric, mode, tail = (field.split(SEP) + ["", "", "", ""])[:4]
            if kind != "h" or metric != name:
                continue
            if tail == "sum":
                sums[mode] = float(value)
            elif tail != "count":
                buckets[mode][tail] += int(value)
        for mode in sorted(buckets):
            running, cumulative = 0, []
            for bound in [*(repr(b) for b in BUCKETS), INF]:
                running += buckets[mode][bound]
                cumulative.append((bound, running))
            family.add_metric([mode], cumulative, sum_value=sums.get(mode, 0.0))
        yield family


def workers(beats: list[dict[str, str]]) -> Iterator[Metric]:
    live = GaugeMetricFamily(
        "dreamlab_workers", "Live workers, by backend, state and serving mode.", labels=["backend", "state", "serving"]
    )
    groups = Counter((b["backend"], b["state"], b["serving"]) for b in beats)
    for labels, n in sorted(groups.items()):
        live.add_metric(list(labels), n)
    yield live
    by_backend: dict[str, Counter[str]] = defaultdict(Counter)
    for beat in beats:
        cache = (json.loads(beat["memory"] or "{}") or {}).get("cache") or {}
        figures = by_backend[beat["backend"]]
        figures["switches"] += int(beat["switches"] or 0)
        for key in ("hits", "evictions", "bytes"):
            figures[key] += int(cache.get(key, 0))
    helps = {
        "switches": ("dreamlab_worker_mode_switches", "Mode switches made by the live workers since they started."),
        "hits": ("dreamlab_host_cache_hits", "Mode loads served from the live workers' host-RAM model cache."),
        "evictions": ("dreamlab_host_cache_evictions", "Models evicted from the live workers' host-RAM cache."),
        "bytes": ("dreamlab_host_cache_bytes", "Bytes the live workers' host-RAM model caches hold."),
    }
    for key, (name, help_text) in helps.items():
        family = GaugeMetricFamily(name, help_text, labels=["backend"])
        for backend, figures in sorted(by_backend.items()):
            family.add_metric([backend], figures[key])
        yield family


@bp.get("/metrics")
@documented(
    tags=("status",),
    ok={200: (None, "Prometheus text exposition: job counters, durations and worker gauges.")},
    media={200: ("text/plain",)},
)
def metrics() -> Response:
    """Prometheus metrics: job counters and durations, and per-worker gauges from heartbeats."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(services()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
