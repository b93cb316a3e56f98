"""Fleet status: workers, queue depths and health."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from flask import Blueprint, jsonify

from api.openapi import documented
from api.schemas.responses import Health, ModelsStatus, Vram
from api.services import Services, services
from api.superres_fields import sr_settings
from jobs.keys import WORKERS_PATTERN
from jobs.superres import SUPERRES_QUEUE

bp = Blueprint("status", __name__)
ADMIN_ONLY = {403: "A `user` key; this needs an `admin` key."}


def live_workers(svc: Services) -> list[dict[str, Any]]:
    """Heartbeats of live workers; a dead worker's key expires within seconds."""
    keys = sorted(svc.redis.scan_iter(match=WORKERS_PATTERN, count=500))
    pipe = svc.redis.pipeline()
    for key in keys:
        pipe.hgetall(key)
    workers = []
    for raw in pipe.execute():
        if not raw:
            continue
        beat = {k.decode(): v.decode() for k, v in raw.items()}
        beat["queues"] = json.loads(beat.get("queues", "[]"))
        beat["handlers"] = json.loads(beat.get("handlers", "[]"))
        beat["cached"] = json.loads(beat.get("cached", "[]"))
        beat["missing"] = json.loads(beat.get("missing", "{}"))
        beat["modes_version"] = int(beat.get("modes_version", 0))
        beat["memory"] = json.loads(beat.get("memory", "{}"))
        beat["pid"] = int(beat.get("pid", 0))
        beat["switches"] = int(beat.get("switches", 0))
        beat["age_seconds"] = round(time.time() - float(beat.pop("updated_at", 0)), 2)
        workers.append(beat)
    return workers


@bp.get("/api/models/status")
@documented(tags=("status",), ok={200: (ModelsStatus, "Queues and live workers.")}, errors=ADMIN_ONLY)
def models_status():
    """Loaded modes, queue depths and every live worker's heartbeat."""
    svc = services()
    workers = live_workers(svc)
    modes = svc.modes
    queues = svc.queues(modes)
    depths = svc.queue_depths(modes)
    return jsonify(
        {
            "current_modes": sorted({w["mode"] for w in workers if w["mode"]}),
            "queues": {name: {"queue": queues[name], "waiting": depths[name]} for name in queues},
            "waiting_total": sum(depths.values()),
            "queue_max": svc.settings.queue_max,
            "superres": superres_status(svc),
            "workers": workers,
        }
    )


@bp.get("/api/vram")
@documented(tags=("status",), ok={200: (Vram, "Memory per worker and fleet-wide.")}, errors=ADMIN_ONLY)
def vram():
    """Memory per worker and fleet-wide, from heartbeats (no worker is asked synchronously)."""
    workers = live_workers(services())
    devices = {}
    for worker in workers:
        memory = worker["memory"]
        if "total_bytes" in memory:
            # Workers on one host share its RAM (or one GPU): count each device once.
            devices[(worker["host"], memory["device"])] = memory
    totals = {f"{k}_bytes": sum(m[f"{k}_bytes"] for m in devices.values()) for k in ("total", "used", "free")}
    models = sum(w["memory"].get("models_bytes", 0) for w in workers)
    cached = sum(w["memory"].get("cache", {}).get("bytes", 0) for w in workers)
    return jsonify(
        {
            "fleet": {**totals, "models_bytes": models, "cached_bytes": cached, "devices": len(devices)},
            "workers": [
                {"name": w["name"], "host": w["host"], "mode": w["mode"], "state": w["state"], "memory": w["memory"]}
                for w in workers
            ],
        }
    )


def superres_status(svc: Services) -> dict[str, Any]:
    sr = sr_settings()
    return {
        "enabled": sr.enabled,
        "queue": SUPERRES_QUEUE,
        "waiting": svc.redis.llen(SUPERRES_QUEUE),
        "queue_max": sr.queue_max,
    }


@bp.get("/healthz")
@documented(
    tags=("status",),
    ok={200: (Health, "The API and Redis are up."), 503: (Health, "Redis is unreachable.")},
    needs_key=False,
)
def healthz():
    """Liveness: the API answers and reaches Redis. Needs no key."""
    try:
        services().redis.ping()
    except redis.RedisError as exc:
        return jsonify({"status": "unavailable", "redis": str(exc)}), 503
    return jsonify({"status": "ok"})
