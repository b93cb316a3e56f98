"""A burst of compatible jobs batched against the same burst unbatched, through a real worker.

8 compatible jobs (tiny SD1.5, 64x64, 4 LCM steps, each its own prompt and seed) are
queued while a warm-up job (which loads the model) runs, so the whole burst waits; the
worker then runs them with BATCH_MAX=8 (one pipeline call) and, on a fresh stack, with
BATCH_MAX=1.  The time is from the burst's first start to its last end, from the job
records.  Target: >= 2x.

    python -m bench.batching [--jobs 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

import redis
import requests
import yaml

from bench.waiting import wait_for_jobs
from jobs.records import JobRecords
from tests.processes import ROOT, Stack, stack_env, start_redis, wait_for

TINY_MODEL = ROOT / ".cache" / "models" / "tiny-sd15"


def write_modes(folder: Path) -> Path:
    path = folder / "modes.yaml"
    spec = {"model": TINY_MODEL.name, "default_size": "64x64", "default_steps": 4, "scheduler": "lcm", "max_steps": 50}
    path.write_text(yaml.safe_dump({"model_root": str(TINY_MODEL.parent), "modes": {"burst": spec}}))
    return path


def burst_seconds(batch_max: int, jobs: int, folder: Path) -> float:
    folder.mkdir()
    server = start_redis(folder / "redis")
    stack = Stack(stack_env(server.url, write_modes(folder), folder / "store", BATCH_MAX=str(batch_max)), folder)
    try:
        base = stack.start_api()
        stack.start_worker()
        records = JobRecords(redis.Redis.from_url(server.url), ttl=3600)
        # A warm-up job loads the model; the burst arrives while it runs, so all of it waits.
        warm = requests.post(f"{base}/api/jobs", json={"prompt": "warm", "num_inference_steps": 40}, timeout=60)
        warm_id = warm.json()["id"]
        wait_for(lambda: records.get(warm_id)["status"] == "running", 600, "the warm-up job to run")
        ids = [
            requests.post(f"{base}/api/jobs", json={"prompt": f"burst {i}", "seed": i}, timeout=60).json()["id"]
            for i in range(jobs)
        ]
        done = wait_for_jobs(records, ids, bound=600)
    finally:
        stack.stop()
        server.stop()
    began = min(datetime.fromisoformat(r["started_at"]) for r in done)
    ended = max(datetime.fromisoformat(r["finished_at"]) for r in done)
    return (ended - began).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not TINY_MODEL.exists():
        from workers.tiny_models import build_sd15

        build_sd15(TINY_MODEL, size="tiny")
    print(f"command: python -m bench.batching --jobs {args.jobs} --runs {args.runs}")
    batched, single = [], []
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
        for run in range(args.runs):
            batched.append(burst_seconds(args.jobs, args.jobs, Path(tmp) / f"batched-{run}"))
            single.append(burst_seconds(1, args.jobs, Path(tmp) / f"single-{run}"))
    b, s = statistics.median(batched), statistics.median(single)
    print(f"burst of {args.jobs} (median of {args.runs}): batched {b:.3f} s, one at a time {s:.3f} s")
    print(f"speed-up: {s / b:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
