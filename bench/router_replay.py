"""bench/router.py's traces replayed through the router's policy: no processes, no clocks, many traces.

A live run of bench/router.py spreads by about 0.03x FIFO in switches between runs of the
same code (this VM's timing decides near ties), and it runs one trace.  This replays that
trace and others drawn the same way (other seeds) through bench/router_sim.py's Fleet with
two workers, which calls tasks/router_policy.py as the workers' routers do, and FIFO through
one queue whose two workers load a mode whenever the next job needs another.  A change to
the policy or its settings is then judged by its mean over the traces.  Times are the
profile's own (unscaled); the router's settings are bench/router.py's, its interval and
the arrival-rate window scaled as a live run at ``--scale`` sees them.  Both sides start
with the first two modes loaded, and count those loads as a live run counts each worker's
first.

    python -m bench.router_replay [--profile cpu-sd15] [--traces 40] [--first-seed 7] [--dwell-jobs J]
"""

from __future__ import annotations

import argparse
import heapq
import statistics
from dataclasses import dataclass

from bench.router import DWELL_JOBS, INTERVAL, JOBS, MODES, PROFILES, Costs, router_settings, trace
from bench.router_sim import Fleet, Worker
from tasks.arrivals import WINDOW
from tasks.router_policy import RouterPolicy


@dataclass(frozen=True)
class Outcome:
    switches: int
    makespan: float  # from the first arrival to the last job's end


def fifo(arrivals: list[tuple[float, int]], costs: Costs) -> Outcome:
    """Two workers on one queue in arrival order, each loading the next job's mode when it has another;
    they start with the first two modes loaded, as the affinity side does."""
    free = [(0.0, 0, 0), (0.0, 1, 1)]
    switches, end = len(free), 0.0
    for at, mode in arrivals:
        ready, worker, loaded = heapq.heappop(free)
        start = max(ready, at)
        if loaded != mode:
            switches += 1
            start += costs.load
        heapq.heappush(free, (start + costs.job, worker, mode))
        end = max(end, start + costs.job)
    return Outcome(switches, end - arrivals[0][0])


def affinity(arrivals: list[tuple[float, int]], costs: Costs, policy: RouterPolicy, scale: float) -> Outcome:
    """The policy's two workers, started on the first two modes as idle routers spread them."""
    workers = [Worker(serving=0), Worker(serving=1)]
    fleet = Fleet(
        policy,
        len(MODES),
        workers,
        rate_window=WINDOW / scale,
        job=costs.job,
        load=costs.load,
        interval=INTERVAL / scale,
    )
    end = fleet.run(arrivals)
    return Outcome(fleet.switches + len(workers), end - arrivals[0][0])


def policy_for(costs: Costs, dwell_jobs: float = DWELL_JOBS) -> RouterPolicy:
    """bench/router.py's settings, the dwell ``dwell_jobs`` jobs (at least a load)."""
    return RouterPolicy(demand=True, job_time=costs.job, **router_settings(costs, dwell_jobs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu-sd15")
    parser.add_argument("--traces", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=7, help="bench/router.py's own trace is seed 7")
    parser.add_argument("--scale", type=float, default=0.01, help="the live run's time scale (interval, rate window)")
    parser.add_argument("--dwell-jobs", type=float, default=DWELL_JOBS, help="ROUTER_MIN_DWELL in jobs (>= a load)")
    args = parser.parse_args()
    costs = PROFILES[args.profile]
    policy = policy_for(costs, args.dwell_jobs)
    switches, makespans = [], []
    for seed in range(args.first_seed, args.first_seed + args.traces):
        arrivals = [(a.at, MODES.index(a.mode)) for a in trace(JOBS, costs, 1.0, seed)]
        ours, theirs = affinity(arrivals, costs, policy, args.scale), fifo(arrivals, costs)
        switches.append(ours.switches / theirs.switches)
        makespans.append(ours.makespan / theirs.makespan)
    print(
        f"command: python -m bench.router_replay --profile {args.profile} --traces {args.traces} "
        f"--first-seed {args.first_seed} --scale {args.scale} --dwell-jobs {args.dwell_jobs:g}"
    )
    print(f"policy: {policy}")
    print(f"trace seed {args.first_seed}: switches {switches[0]:.3f}x FIFO, makespan {makespans[0]:.3f}x FIFO")
    for name, values in (("switches", switches), ("makespan", makespans)):
        print(
            f"{name}/fifo over {args.traces} traces: mean {statistics.mean(values):.3f}  "
            f"median {statistics.median(values):.3f}  max {max(values):.3f}"
        )
    print(f"switches/fifo mean {statistics.mean(switches):.3f}  makespan/fifo mean {statistics.mean(makespans):.4f}")


if __name__ == "__main__":
    main()
