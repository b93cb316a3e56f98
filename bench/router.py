"""The mode-affinity router against FIFO on one seeded trace, through real worker processes.

A fixed trace (seeded: 200 jobs over 3 modes, Poisson arrivals) is submitted over HTTP to
a stack of Redis, the API and 2 Celery workers, once with ROUTER=affinity and once with
ROUTER=fifo (one queue per backend, a model switch whenever the next job needs another
mode: the original Dream Lab's behaviour).  The workers run the timed backend (workers/timed.py), which
sleeps a profile's load, step and decode costs scaled by ``--scale``; the queues, the
router and the heartbeats are the real code, and switch counts are the workers' own.
Targets: switches <= 0.2x FIFO; makespan <= 0.6x where a load costs many jobs (gpu-sdxl),
<= 1.0x where it costs a fifth of one (cpu-sd15).

    python -m bench.router [--profile cpu-sd15|gpu-sdxl] [--jobs 200] [--scale 0.01] [--seed 7] [--dwell-jobs 3.5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis
import requests
import yaml

from bench.waiting import wait_for_jobs
from jobs.keys import WORKERS_PATTERN
from jobs.records import JobRecords
from tests.processes import ROOT, Stack, stack_env, start_redis

TINY_MODEL = ROOT / ".cache" / "models" / "tiny-sd15"
MODES = ("portrait", "landscape", "anime")
WEIGHTS = (0.5, 0.3, 0.2)
STEPS = 4
JOBS = 200  # a trace's length by default
UTILIZATION = 0.8  # arrivals offered at this share of two workers' capacity without switches
INTERVAL = 0.1  # seconds between idle routers' looks (ROUTER_INTERVAL), not scaled
DWELL_JOBS = 3.5  # ROUTER_MIN_DWELL in jobs' run time (at least a load)


@dataclass(frozen=True)
class Costs:
    load: float
    step: float
    decode: float
    source: str
    makespan_target: float  # affinity / FIFO

    @property
    def job(self) -> float:
        return STEPS * self.step + self.decode


PROFILES = {
    "cpu-sd15": Costs(
        load=3.95,
        step=2.8,
        decode=9.0,
        source="measured on the dev CPU: cold switch (bench/modes.py), UNet step and VAE decode at 256 px (FACTS.md)",
        makespan_target=1.0,  # a load costs a fifth of a job: the arrivals set the makespan
    ),
    "gpu-sdxl": Costs(
        load=26.0,
        step=0.12,
        decode=0.25,
        source="SDXL load measured on the dev CPU (FACTS.md); GPU step and decode at 1024 px ASSUMED, not measured",
        makespan_target=0.6,
    ),
}


@dataclass(frozen=True)
class Arrival:
    at: float
    mode: str
    seed: int


def trace(jobs: int, costs: Costs, scale: float, seed: int) -> list[Arrival]:
    rng = random.Random(seed)
    mean_gap = costs.job * scale / (2 * UTILIZATION)
    at, arrivals = 0.0, []
    for i in range(jobs):
        at += rng.expovariate(1 / mean_gap)
        arrivals.append(Arrival(at, rng.choices(MODES, WEIGHTS)[0], i))
    return arrivals


def router_settings(costs: Costs, dwell_jobs: float = DWELL_JOBS) -> dict[str, float]:
    """The router's settings for a profile, in its unscaled seconds: a worker serves a mode at least
    as long as loading it took (``dwell_jobs`` jobs, at least), and a mode starves only after several
    loads' worth of waiting."""
    return {
        "min_dwell": max(dwell_jobs * costs.job, costs.load),
        "starvation": 5 * costs.load + 10 * costs.job,
        "switch_cost": costs.load / costs.job,
    }


def write_modes(folder: Path, modes: tuple[str, ...] = MODES) -> Path:
    """A modes file with ``modes`` on the tiny model (built if missing), which the timed backend only names."""
    if not TINY_MODEL.exists():
        from workers.tiny_models import build_sd15

        build_sd15(TINY_MODEL, size="tiny")
    path = folder / "modes.yaml"
    spec = {"model": TINY_MODEL.name, "default_size": "64x64", "default_steps": STEPS, "scheduler": "lcm"}
    config = {"model_root": str(TINY_MODEL.parent), "modes": dict.fromkeys(modes, spec)}
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # in MODES order: idle workers spread in it
    return path


def run(
    router: str, arrivals: list[Arrival], costs: Costs, scale: float, workdir: Path, dwell_jobs: float = DWELL_JOBS
) -> dict[str, float]:
    folder = workdir / router
    folder.mkdir()
    settings = router_settings(costs, dwell_jobs)
    server = start_redis(folder / "redis")
    env = stack_env(
        server.url,
        write_modes(folder),
        folder / "store",
        ROUTER=router,
        QUEUE_MAX="100000",
        WORKER_BACKEND="timed",
        TIMED_LOAD_SECONDS=str(costs.load * scale),
        TIMED_STEP_SECONDS=str(costs.step * scale),
        TIMED_DECODE_SECONDS=str(costs.decode * scale),
        ROUTER_MIN_DWELL=str(settings["min_dwell"] * scale),
        ROUTER_STARVATION=str(settings["starvation"] * scale),
        ROUTER_INTERVAL=str(INTERVAL),
        ROUTER_SWITCH_COST=str(settings["switch_cost"]),
        BATCH_MAX="1",  # one job a pipeline call, as the earlier figures were taken
    )
    stack = Stack(env, folder)
    try:
        stack.start_worker()
        stack.start_worker()
        base = stack.start_api()
        client = redis.Redis.from_url(server.url)
        ids = submit(base, arrivals)
        records = JobRecords(client, ttl=3600)
        # Bound: every job after the last arrival, each with a load, on one worker, plus a minute.
        done = wait_for_jobs(records, ids, bound=len(ids) * (costs.job + costs.load) * scale + 60)
        switches = sum(int(client.hget(key, "switches")) for key in client.scan_iter(WORKERS_PATTERN))
    finally:
        stack.stop()
        server.stop()
    created = [stamp(r["created_at"]) for r in done]
    waits = sorted(stamp(r["started_at"]) - c for r, c in zip(done, created, strict=True))
    return {
        "switches": switches,
        "makespan": max(stamp(r["finished_at"]) for r in done) - min(created),
        "wait_p50": statistics.median(waits),
        "wait_p95": waits[int(0.95 * (len(waits) - 1))],
    }


def submit(base: str, arrivals: list[Arrival]) -> list[str]:
    session = requests.Session()
    began = time.monotonic()
    ids = []
    for arrival in arrivals:
        time.sleep(max(0.0, arrival.at - (time.monotonic() - began)))
        response = session.post(f"{base}/api/jobs", json={"mode": arrival.mode, "prompt": "p", "seed": arrival.seed})
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


def stamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu-sd15")
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--scale", type=float, default=0.01, help="time scale applied to the profile's costs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dwell-jobs", type=float, default=DWELL_JOBS, help="ROUTER_MIN_DWELL in jobs (>= a load)")
    args = parser.parse_args()
    costs = PROFILES[args.profile]
    arrivals = trace(args.jobs, costs, args.scale, args.seed)
    counts = {m: sum(a.mode == m for a in arrivals) for m in MODES}
    options = (
        f"--profile {args.profile} --jobs {args.jobs} --scale {args.scale} --seed {args.seed} "
        f"--dwell-jobs {args.dwell_jobs:g}"
    )
    print(f"command: python -m bench.router {options}")
    print(f"profile {args.profile}: load {costs.load} s, step {costs.step} s x {STEPS}, decode {costs.decode} s")
    print(f"  ({costs.source}); every cost x {args.scale} in this run (the timed backend sleeps them)")
    print(f"trace: {args.jobs} jobs {counts}, 2 workers, arrivals at {UTILIZATION:.0%} of their capacity")
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        folder = Path(tmp)
        results = {r: run(r, arrivals, costs, args.scale, folder, args.dwell_jobs) for r in ("affinity", "fifo")}
    for router, r in results.items():
        print(
            f"{router:>8}: switches {r['switches']:4d}  makespan {r['makespan']:7.2f} s  "
            f"wait p50 {r['wait_p50']:6.2f} s  p95 {r['wait_p95']:6.2f} s"
        )
    a, f = results["affinity"], results["fifo"]
    print(f"switches ratio (affinity / fifo): {a['switches'] / f['switches']:.3f} (target <= 0.2)")
    print(f"makespan ratio (affinity / fifo): {a['makespan'] / f['makespan']:.3f} (target <= {costs.makespan_target})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
