"""The router's policy at fleet scale: a discrete-event simulation of 1,000 workers x 50 modes.

The simulation drives tasks/router_policy.py (the code the workers' routers run) at the
points where a real worker acts: when it finishes a job (a move takes effect between
jobs) and, for idle workers, whenever the backlog changes and every ROUTER_INTERVAL.
Arrivals are Poisson with Zipf-distributed mode popularity; every job costs the same;
a switch costs a load.  Workers start spread over the modes, as idle workers do.

It compares:
- switches against an offline lower bound: a schedule that ends by the same makespan
  must load mode m on at least ceil(work_m / makespan) workers, less those that start on m;
- the p95 wait against an oracle: one pooled FIFO queue whose workers switch for free.
  The oracle's waits are near zero when the fleet has headroom, so the time in system
  (wait + the job) is reported beside the wait.
Targets: switches <= 1.5x the bound and p95 time in system <= 1.3x the oracle, at one setting.

By default the policy allocates by demand (tasks/router_policy.py ``demand``): each
mode's arrivals are counted over the last ``--rate-window`` seconds (over all of them
while fewer have passed), as the allocator counts them from the API's counters
(tasks/arrivals.py); ``--no-demand`` runs the backlog-only policy.
The last line: ``switches/bound <x>  p95 time in system/oracle <y>``.

    python -m bench.router_sim [--workers 1000] [--modes 50] [--jobs 100000] [--load 0.8] [--seed 7]
        [--switch-cost C] [--staffing 1.5] [--confidence 2] [--leave-confidence 1.25] [--rate-window 600]
        [--no-demand]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field

from tasks.arrivals import WINDOW
from tasks.router_policy import Backlog, RouterPolicy, WorkerView

JOB = 20.0  # seconds: SD1.5, 4 LCM steps at 256 px on the dev CPU (bench/router.py's cpu-sd15 profile)
LOAD = 3.95  # seconds: its cold switch (bench/modes.py)
INTERVAL = 0.5
RATE_WINDOW = WINDOW  # seconds of arrivals a mode's rate is counted over, as the allocator does


@dataclass
class Worker:
    serving: int
    since: float = -math.inf
    busy: bool = False


@dataclass
class Fleet:
    policy: RouterPolicy
    modes: int
    workers: list[Worker]
    queues: list[deque] = field(default_factory=list)
    servers: list[int] = field(default_factory=list)
    idle: list[set[int]] = field(default_factory=list)
    unserved_since: dict[int, float] = field(default_factory=dict)
    events: list = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    switches: int = 0
    seq: int = 0
    arrived: list[deque] = field(default_factory=list)  # arrival times within rate_window, per mode
    rate_window: float = RATE_WINDOW
    job: float = JOB  # seconds a job runs
    load: float = LOAD  # seconds a switch takes
    interval: float = INTERVAL  # seconds between idle routers' looks
    last_arrival: float | None = None
    _seen: tuple = ((None, None), {})

    def __post_init__(self) -> None:
        self.queues = [deque() for _ in range(self.modes)]
        self.arrived = [deque() for _ in range(self.modes)]
        self.servers = [0] * self.modes
        self.idle = [set() for _ in range(self.modes)]
        for i, worker in enumerate(self.workers):
            self.servers[worker.serving] += 1
            self.idle[worker.serving].add(i)

    def schedule(self, at: float, kind: str, data: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, data))

    def backlogs(self, now: float) -> dict[int, Backlog]:
        """Every mode's backlog at ``now`` (the same until time moves on or a worker moves)."""
        if self._seen[0] == (now, self.switches):
            return self._seen[1]
        out = {}
        for m, queue in enumerate(self.queues):
            if queue and not self.servers[m]:
                unserved = now - self.unserved_since.setdefault(m, now)
            else:
                self.unserved_since.pop(m, None)
                unserved = 0.0
            out[m] = Backlog(len(queue), now - queue[0] if queue else 0.0, unserved, *self.counted(m, now))
        self._seen = ((now, self.switches), out)
        return out

    def counted(self, mode: int, now: float) -> tuple[int, float]:
        """Arrivals over the last ``rate_window`` seconds and that span, as a counter per mode at admission tells."""
        arrived = self.arrived[mode]
        while arrived and arrived[0] < now - self.rate_window:
            arrived.popleft()
        return len(arrived), min(now, self.rate_window)

    def quiet(self, now: float) -> float:
        """Seconds since the last arrival, as the allocator tells the routers (0 before the first)."""
        return 0.0 if self.last_arrival is None else now - self.last_arrival

    def servers_map(self) -> dict[int, int]:
        return dict(enumerate(self.servers))

    def idle_map(self) -> dict[int, int]:
        return {m: len(workers) for m, workers in enumerate(self.idle)}

    def start(self, w: int, now: float) -> None:
        worker = self.workers[w]
        self.waits.append(now - self.queues[worker.serving].popleft())
        worker.busy = True
        self.schedule(now + self.job, "done", w)

    def move(self, w: int, mode: int, now: float) -> None:
        worker = self.workers[w]
        self.idle[worker.serving].discard(w)
        self.servers[worker.serving] -= 1
        self.servers[mode] += 1
        worker.serving, worker.since, worker.busy = mode, now, True
        self.switches += 1
        self.schedule(now + self.load, "loaded", w)

    def next_job(self, w: int, now: float) -> None:
        worker = self.workers[w]
        worker.busy = False
        if self.queues[worker.serving]:
            self.start(w, now)
        else:
            self.idle[worker.serving].add(w)
            self.rebalance(now)

    def done(self, w: int, now: float) -> None:
        worker = self.workers[w]
        view = WorkerView(worker.serving, dwell=now - worker.since)
        idle = self._idle_after(worker.serving)
        target = self.policy.choose(view, self.backlogs(now), self.servers_map(), idle, self.quiet(now))
        if target is not None:
            self.move(w, target, now)
        else:
            self.next_job(w, now)

    def _idle_after(self, mode: int) -> dict[int, int]:
        """Idle servers per mode, counting the worker deciding after its job as idle."""
        idle = self.idle_map()
        idle[mode] += 1
        return idle

    def rebalance(self, now: float) -> None:
        """Idle workers act as their routers would: one at a time, each seeing the last move."""
        moved = True
        while moved:
            moved = False
            for m in range(self.modes):
                ready = [w for w in self.idle[m] if now - self.workers[w].since >= self.policy.min_dwell]
                if not ready:
                    continue
                view = WorkerView(m, dwell=now - self.workers[ready[0]].since)
                backlogs, servers = self.backlogs(now), self.servers_map()
                target = self.policy.choose(view, backlogs, servers, self.idle_map(), self.quiet(now))
                if target is not None:
                    self.move(ready[0], target, now)
                    moved = True
                    break

    def arrive(self, mode: int, now: float) -> None:
        self.last_arrival = now
        self.queues[mode].append(now)
        self.arrived[mode].append(now)
        if self.idle[mode]:
            w = self.idle[mode].pop()
            self.start(w, now)
        else:
            self.rebalance(now)

    def run(self, arrivals: list[tuple[float, int]]) -> float:
        for at, mode in arrivals:
            self.schedule(at, "arrive", mode)
        self.schedule(self.interval, "tick", 0)
        pending, now = len(arrivals), 0.0
        while pending or any(w.busy for w in self.workers):
            now, _, kind, data = heapq.heappop(self.events)
            if kind == "arrive":
                pending -= 1
                self.arrive(data, now)
            elif kind == "done":
                self.done(data, now)
            elif kind == "loaded":
                self.next_job(data, now)
            else:
                self.rebalance(now)
                self.schedule(now + self.interval, "tick", 0)
        return now


def zipf_arrivals(jobs: int, modes: int, workers: int, load: float, rng: random.Random) -> list[tuple[float, int]]:
    weights = [1 / (m + 1) for m in range(modes)]
    rate = load * workers / JOB
    at, out = 0.0, []
    for mode in rng.choices(range(modes), weights, k=jobs):
        at += rng.expovariate(rate)
        out.append((at, mode))
    return out


def oracle_waits(arrivals: list[tuple[float, int]], workers: int) -> list[float]:
    """One pooled FIFO queue, every worker serving every mode at no switch cost."""
    free = [0.0] * workers
    waits = []
    for at, _ in arrivals:
        start = max(at, heapq.heappop(free))
        waits.append(start - at)
        heapq.heappush(free, start + JOB)
    return waits


def lower_bound(arrivals: list[tuple[float, int]], modes: int, initial: list[int], makespan: float) -> int:
    counts = [0] * modes
    for _, mode in arrivals:
        counts[mode] += 1
    need = [max(1 if c else 0, math.ceil(c * JOB / makespan)) for c in counts]
    return sum(max(0, n - i) for n, i in zip(need, initial, strict=True))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--modes", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--load", type=float, default=0.8, help="offered load as a share of the fleet's capacity")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--switch-cost", type=float, default=LOAD / JOB, help="the policy's switch_cost (ROUTER_SWITCH_COST), in jobs"
    )
    parser.add_argument(
        "--staffing", type=float, default=1.5, help="allocation by demand: spare servers per root of busy ones"
    )
    parser.add_argument("--confidence", type=float, default=2.0, help="demand: standard errors short to join")
    parser.add_argument("--leave-confidence", type=float, default=1.25, help="demand: standard errors over to leave")
    parser.add_argument("--rate-window", type=float, default=RATE_WINDOW, help="seconds of arrivals a rate counts")
    parser.add_argument("--no-demand", action="store_true", help="the backlog-only policy (no allocation by demand)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    arrivals = zipf_arrivals(args.jobs, args.modes, args.workers, args.load, rng)
    demand = {} if args.no_demand else {"demand": True, "job_time": JOB, "staffing": args.staffing}
    demand |= {"confidence": args.confidence, "leave_confidence": args.leave_confidence}
    policy = RouterPolicy(min_dwell=2.0, starvation=30.0, switch_cost=args.switch_cost, **demand)
    workers = [Worker(serving=i % args.modes) for i in range(args.workers)]
    fleet = Fleet(policy, args.modes, workers, rate_window=args.rate_window)
    initial = list(fleet.servers)
    began = time.perf_counter()
    makespan = fleet.run(arrivals)
    elapsed = time.perf_counter() - began
    bound = lower_bound(arrivals, args.modes, initial, makespan)
    oracle = oracle_waits(arrivals, args.workers)
    print(
        f"command: python -m bench.router_sim --workers {args.workers} --modes {args.modes} "
        f"--jobs {args.jobs} --load {args.load} --seed {args.seed} --switch-cost {args.switch_cost:g}"
        + (
            " --no-demand"
            if args.no_demand
            else f" --staffing {args.staffing:g} --confidence {args.confidence:g}"
            f" --leave-confidence {args.leave_confidence:g} --rate-window {args.rate_window:g}"
        )
    )
    print(f"fleet: {args.workers} workers, {args.modes} modes (Zipf), {args.jobs} jobs at {args.load:.0%} load")
    print(f"costs: job {JOB} s, switch {LOAD} s; policy {policy}; simulated in {elapsed:.1f} s")
    print(f"switches: router {fleet.switches}, offline lower bound {bound}: {fleet.switches / max(bound, 1):.2f}x")
    router_p95, oracle_p95 = p95(fleet.waits), p95(oracle)
    print(f"p95 wait: router {router_p95:.2f} s, oracle {oracle_p95:.2f} s")
    print(
        f"p95 time in system: router {router_p95 + JOB:.2f} s, oracle {oracle_p95 + JOB:.2f} s: "
        f"{(router_p95 + JOB) / (oracle_p95 + JOB):.2f}x"
    )
    print(f"makespan {makespan:.0f} s (last arrival {arrivals[-1][0]:.0f} s)")
    in_system = (router_p95 + JOB) / (oracle_p95 + JOB)
    print(f"switches/bound {fleet.switches / max(bound, 1):.2f}  p95 time in system/oracle {in_system:.2f}")


if __name__ == "__main__":
    main()
