"""``GET /metrics``: the fleet's figures, the same from every gunicorn process, parsed back with
prometheus-client's own parser.  Real processes: redis-server, the API (2 gunicorn workers), a torch worker."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from jobs.keys import GENERATE_TASK, generation_queue
from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from tests.client import poll, submit
from tests.conftest import TINY
from tests.processes import wait_for
from tests.test_delivery import log_count


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    """Every sample of one scrape: (name, sorted labels) -> value."""
    response = requests.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_each_job_once_by_kind_mode_and_outcome_in_every_api_process(make_stack):
    stack = make_stack(CUSTOM_HANDLER_MODULES="tests.handlers.sample", QUEUE_MAX="2")
    worker = stack.start_worker()
    base = stack.start_api()

    done = poll(base, submit(base, prompt="counted once", seed=1)["id"])
    assert done["status"] == "succeeded"
    failed = requests.post(f"{base}/api/custom", json={"handler": "add", "args": {"numbers": "x"}}, timeout=30)
    assert poll(base, failed.json()["id"])["status"] == "failed"
    stuck = [submit(base, mode="npu", prompt=f"no worker serves npu {i}") for i in range(2)]
    refused = requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": "one too many"}, timeout=30)
    assert refused.status_code == 429
    assert value(scrape(base), "dreamlab_jobs_waiting", mode="npu") == 2
    for job in stuck:
        assert requests.delete(f"{base}/api/jobs/{job['id']}", timeout=30).json()["status"] == "canceled"

    mode = ResolvedMode(name="demo", model_path=TINY, scheduler="lcm", backend="torch")
    again = GenerateJob(job_id=done["id"], mode=mode, params=GenerateParams(**done["params"]))
    Celery(broker=stack.env["REDIS_URL"]).send_task(
        GENERATE_TASK, args=[again.to_dict()], queue=generation_queue("torch", "demo"), task_id=done["id"]
    )
    wait_for(lambda: log_count([worker], "dropping this delivery") == 1, 120, "the duplicate delivery to be dropped")

    scrapes = [scrape(base) for _ in range(6)]  # two gunicorn processes: both answer some of these
    assert all(_same_counts(s, scrapes[0]) for s in scrapes)
    samples = scrapes[0]
    assert value(samples, "dreamlab_jobs_admitted_total", kind="generate", mode="demo") == 1
    assert value(samples, "dreamlab_jobs_admitted_total", kind="generate", mode="npu") == 2
    assert value(samples, "dreamlab_jobs_admitted_total", kind="custom", mode="") == 1
    assert value(samples, "dreamlab_jobs_refused_total", kind="generate", mode="npu") == 1
    ended = "dreamlab_jobs_ended_total"
    assert value(samples, ended, kind="generate", mode="demo", status="succeeded") == 1
    assert value(samples, ended, kind="custom", mode="", status="failed") == 1
    assert value(samples, ended, kind="generate", mode="npu", status="canceled") == 2
    assert value(samples, "dreamlab_jobs_waiting", mode="npu") == 0
    # Each histogram observed the job's own times, read back from its record (an independent source).
    created, started, finished = (datetime.fromisoformat(done[k]) for k in ("created_at", "started_at", "finished_at"))
    expected = {"queue_wait": started - created, "run": finished - started, "end_to_end": finished - created}
    for histogram, took in expected.items():
        name = f"dreamlab_job_{histogram}_seconds"
        assert value(samples, f"{name}_count", mode="demo") == 1
        assert value(samples, f"{name}_bucket", mode="demo", le="+Inf") == 1
        assert value(samples, f"{name}_sum", mode="demo") == pytest.approx(took.total_seconds(), abs=1e-3)
    assert value(samples, "dreamlab_job_end_to_end_seconds_count", mode="npu") == 2
    live = {labels: n for (name, labels), n in samples.items() if name == "dreamlab_workers"}
    assert sum(live.values()) == 1
    assert dict(next(iter(live)))["backend"] == "torch"
    assert ("dreamlab_worker_mode_switches", (("backend", "torch"),)) in samples


def _same_counts(a: dict, b: dict) -> bool:
    """Equal but for the gauges that move between scrapes (a worker's state and its cache)."""
    moving = ("dreamlab_workers", "dreamlab_host_cache", "dreamlab_worker_mode_switches")
    return {k: v for k, v in a.items() if not k[0].startswith(moving)} == {
        k: v for k, v in b.items() if not k[0].startswith(moving)
    }
