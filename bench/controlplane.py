"""What the fleet's control plane costs one Redis core, term by term, from 100 to 10,000 workers.

Each term is the project's own code run against a Redis filled like N workers x M modes
(every worker's serving entry and heartbeat, every mode's waiting set and queue), its
cost read from Redis' own CPU counters (INFO cpu, less the server's idle cron):
- router tick: ``Router.tick`` of a router that does not hold the allocator lease, as
  many a second as the router's own ``TickSchedule`` makes (every ROUTER_INTERVAL while
  idle, every tenth of ROUTER_STARVATION while a job runs, once as a job ends), stepped
  as ``Router._loop`` steps it over a worker busy ``--busy-share`` of its time;
- allocator: the holder's extra work per tick (``Allocator.allocate``), once per backend,
  and its scan of kombu's unacked index every RESTORE_EVERY seconds (tasks/restore.py);
- heartbeat ``Heartbeat.beat``, written by the router with its own entry (``Router.beat``),
  lease ``Lease.renew`` and progress ``JobRecords.progress``;
- job: a whole no-op job through a real API (POST /generate) and a real noop worker
  (admit, Celery delivery, claim, its progress write, succeed, the waiter's wake-up);
- idle worker: what a real noop worker costs Redis while idle, beyond the router,
  allocator and heartbeat (Celery's BRPOP, unacked-index scan, event heartbeat, pidbox):
  Redis' own MONITOR of the idle stack, each command counted for the connection that sent
  it (a script's inner commands for its caller's); a connection that names one of our keys
  (``dl:``) is ours, every other one Celery's.
A busy fleet runs a job every ``--job-every`` seconds per worker with ``--steps`` steps
(spread over all of it: by default a job runs until the next one starts);
progress writes are throttled to one every PROGRESS_EVERY seconds (tasks/cancel.py)
plus the last.  The model: N x (per-worker terms) + the allocator, in µs of Redis CPU a
second; its last line is the fleet that keeps one Redis core 50 % busy.

A sanity run checks the model against real router loops: ``--sanity`` routers in
several processes tick in turn for a while, elect an allocator among themselves,
and their measured Redis CPU per tick is compared with the terms above.

Costs are those of a busy Redis (calls back to back).  On a shared machine a request
that finds Redis asleep costs it several times more (a PING: ~13 µs back to back,
~90 µs 5 ms apart on the 2-core dev VM), which is why the idle worker's polling is
priced per command, and why a fleet's Redis should be measured busy.

    python -m bench.controlplane [--modes 50] [--sizes 100,1000,3000,10000] [--sanity 60]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import math
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import redis
import yaml

from config import Settings
from jobs.keys import generation_queue, servers_key, serving_key, waiting_key, worker_key
from jobs.records import CLAIMED, JobRecords, QueuedMessage, Turn
from modes.registry import ModesRegistry
from tasks.celery_app import app
from tasks.heartbeat import INTERVAL as HEARTBEAT_EVERY
from tasks.heartbeat import Heartbeat
from tasks.lease import Lease
from tasks.restore import CLIENT_NAME, RESTORE_EVERY, Restorer
from tasks.router import BUSY_SHARE, POLL, Router, TickSchedule
from tests.processes import Stack, stack_env, start_redis
from workers.noop import NoopBackend

INTERVAL = 0.5  # ROUTER_INTERVAL's default
LEASE_EVERY = 15.0 / 3  # LEASE_TTL's default, renewed every third of it
PROGRESS_EVERY = 0.25
ENTRY_EVERY = 10.0 / 3  # a router with no heartbeat (the sanity run's) rewrites its entry a third into its lease
WAITING_PER_MODE = 4
CORE = 1_000_000.0  # µs of CPU a second in one core
IDLE_WATCH = 60.0  # seconds of an idle worker's commands counted: two of its own unacked scans (celeryconfig.py)


def redis_cpu(client: redis.Redis) -> float:
    """Redis' own CPU time so far, in µs."""
    info = client.info("cpu")
    return (info["used_cpu_sys"] + info["used_cpu_user"]) * 1e6


def idle_rate(client: redis.Redis, seconds: float = 2.0) -> float:
    """Redis' CPU a second while nothing is asked of it (its cron): subtracted from every measure."""
    before = redis_cpu(client)
    time.sleep(seconds)
    return (redis_cpu(client) - before) / seconds


def per_call(client: redis.Redis, call: Callable[[], object], calls: int, idle: float, rounds: int = 5) -> float:
    """µs of Redis CPU per ``call()``: the median of ``rounds`` rounds (other processes on the machine disturb some)."""
    costs = []
    for _ in range(rounds):
        began, before = time.monotonic(), redis_cpu(client)
        for _ in range(max(1, calls // rounds)):
            call()
        spent = redis_cpu(client) - before - idle * (time.monotonic() - began)
        costs.append(max(spent, 0.0) / max(1, calls // rounds))
    return statistics.median(costs)


def write_modes(folder: Path, modes: int) -> Path:
    (folder / "m").mkdir(parents=True, exist_ok=True)
    path = folder / "modes.yaml"
    spec = {"model": "m", "scheduler": "lcm"}
    path.write_text(yaml.safe_dump({"model_root": str(folder), "modes": {f"mode{i:02d}": spec for i in range(modes)}}))
    return path


def populate(client: redis.Redis, workers: int, modes: list[str]) -> None:
    """Fill Redis like ``workers`` routers and heartbeats spread over ``modes``, each mode with jobs waiting."""
    client.flushdb()
    expires = int(time.time() * 1000) + 3_600_000
    pipe = client.pipeline(transaction=False)
    counts: dict[str, int] = {}
    for w in range(workers):
        mode = modes[w % len(modes)]
        pipe.hset(serving_key("torch"), f"fleet-{w}", f"{mode}|{expires}|busy")
        pipe.hset(worker_key(f"fleet-{w}"), mapping={"name": f"fleet-{w}", "serving": mode, "state": "busy"})
        counts[mode] = counts.get(mode, 0) + 1
        if w % 1000 == 999:
            pipe.execute()
    pipe.hset(servers_key("torch"), mapping=counts)
    pipe.execute()
    records = JobRecords(client, ttl=3600)
    for mode in modes:
        for _ in range(WAITING_PER_MODE):
            job_id = str(uuid.uuid4())
            message = QueuedMessage(generation_queue("torch", mode), json.dumps({"id": job_id, "pad": "x" * 600}))
            turn = Turn(waiting_key("torch", mode), 0.0, {"job_id": job_id})
            records.create(job_id, "generate", mode, {"prompt": "p"}, [], 1 << 30, turn, message)


def make_router(client: redis.Redis, registry: ModesRegistry, name: str, allocator_ms: int = 3_000) -> Router:
    settings = dataclasses.replace(Settings.from_env(), router_interval=INTERVAL)
    return Router(client, registry, "torch", name, settings, allocator_ms=allocator_ms)


def stub_runner(client: redis.Redis) -> SimpleNamespace:
    """What Heartbeat reads of a worker's runner."""
    return SimpleNamespace(redis=client, backend=NoopBackend(), current_job="a-job-id", switches=3)


def ticks_a_second(job_every: float, busy_share: float, starvation: float, seconds: float = 600.0) -> float:
    """A router's ticks a second (the allocator's aside) by its TickSchedule, looked at every POLL seconds as
    Router._loop does, for a worker that runs a job for ``busy_share`` of every ``job_every`` seconds."""
    schedule = TickSchedule(INTERVAL, BUSY_SHARE * starvation)
    ticks = 0
    for look in range(int(seconds / POLL)):
        now = look * POLL
        if schedule.due(now, now % job_every < busy_share * job_every):
            schedule.ticked(now)
            ticks += 1
    return ticks / seconds


def progress_writes(steps: int, every: float) -> int:
    """How many of ``steps`` steps ``every`` seconds apart tasks/cancel.py's throttle writes."""
    writes, written = 0, -math.inf
    for step in range(1, steps + 1):
        if step == steps or step * every - written >= PROGRESS_EVERY:
            writes, written = writes + 1, step * every
    return writes


@dataclasses.dataclass
class Terms:
    """µs of Redis CPU per operation at one fleet size."""

    workers: int
    tick: float
    allocator: float
    entry: float
    heartbeat: float
    lease: float
    progress: float

    def per_second(
        self, job: float, idle_worker: float, scan: float, job_every: float, steps: int, ticks: float
    ) -> dict[str, float]:
        """The fleet's µs of Redis CPU a second, per term; ``scan``: one scan of kombu's unacked index,
        which the allocator runs every RESTORE_EVERY seconds; ``ticks``: a worker's router ticks a second."""
        writes = progress_writes(steps, job_every / steps)
        n = self.workers
        return {
            "router ticks": n * self.tick * ticks,
            "allocator": self.allocator / INTERVAL + scan / RESTORE_EVERY,
            # Every HEARTBEAT_EVERY seconds, and at once when a job starts or ends (tasks/heartbeat.py):
            # two beats a job that each restart the wait, one more a job on average.  Each renews the
            # router's own entry, busy or idle, in the same write (Router.beat): no entry term of its own.
            "heartbeats and own entries": n * self.heartbeat * (1 / HEARTBEAT_EVERY + 1 / job_every),
            "lease renewals": n * self.lease / LEASE_EVERY,
            f"progress ({writes} a job)": n * self.progress * writes / job_every,
            "jobs": n * job / job_every,
            "idle Celery": n * idle_worker,
        }


def router_from(revision: str) -> type:
    """The Router class of tasks/router.py at a git ``revision``, to measure the tick it had."""
    source = subprocess.run(["git", "show", f"{revision}:tasks/router.py"], capture_output=True, text=True, check=True)
    module = types.ModuleType(f"router_at_{revision}")
    exec(compile(source.stdout, f"{revision}:tasks/router.py", "exec"), module.__dict__)
    return module.Router


def measure_terms(
    client: redis.Redis, registry: ModesRegistry, workers: int, idle: float, old_router: type | None = None
) -> Terms:
    modes = registry.current().modes
    populate(client, workers, list(modes))
    if old_router is not None:  # each router read everything and rewrote its entry at every tick
        settings = dataclasses.replace(Settings.from_env(), router_interval=INTERVAL)
        old = old_router(client, registry, "torch", "fleet-1", settings)
        old.tick()
        terms = measure_terms(client, registry, workers, idle)
        return dataclasses.replace(terms, tick=per_call(client, old.tick, 100, idle), allocator=0.0, entry=0.0)
    holder = make_router(client, registry, "fleet-0", allocator_ms=3_600_000)
    holder.tick()
    router = make_router(client, registry, "fleet-1")
    router.tick()
    tick = per_call(client, router.tick, 400, idle)
    allocate = per_call(client, holder.tick, max(20, 40_000 // workers), idle) - tick
    states = iter(["busy", "idle"] * 10**6)
    entry = per_call(client, lambda: router._table.serve("fleet-1", router.serving, 10_000, next(states)), 400, idle)
    # The heartbeat writes the router's entry too (Router.beat), busy or idle: half of a busy worker's beats flip it.
    flips = itertools.cycle([True, False])
    settings = dataclasses.replace(Settings.from_env(), router_interval=INTERVAL)
    beating = Router(client, registry, "torch", "fleet-2", settings, busy=lambda: next(flips))
    beating.tick()
    beat = Heartbeat(
        stub_runner(client), "fleet-2", lambda: ["gen.torch.mode00", "custom"], [], str, dict, beating.beat
    )
    heartbeat = per_call(client, beat.beat, 400, idle)
    records = JobRecords(client, ttl=3600)
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "mode00", {}, [], 1 << 30)
    lease = Lease(client, job_id, 15.0, "a-delivery-tag")
    assert records.claim(job_id, lease.token, "fleet-1", 15.0) == CLAIMED
    renew = per_call(client, lease.renew, 400, idle)
    steps = iter(range(10**9))
    progress = per_call(client, lambda: records.progress(job_id, lease.token, next(steps), 25), 400, idle)
    return Terms(workers, tick, max(allocate, 0.0), entry, heartbeat, renew, progress)


def celery_commands(url: str, seconds: float) -> collections.Counter[str]:
    """The commands Celery (not our code) sends in ``seconds``, by name and first argument, from MONITOR.

    A connection is ours when one of its commands names a ``dl:`` key, or it is the allocator's
    scan for dead workers' messages (named CLIENT_NAME: a cost of the allocator's, once per
    backend); a script's inner commands (MONITOR's ``lua`` client) count for the connection
    that called the script."""
    by_connection: dict[str, list[list[str]]] = collections.defaultdict(list)
    caller = ""
    with redis.Redis.from_url(url).monitor() as feed:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            command = feed.next_command()
            words = command["command"].split()
            if command["client_type"] == "lua":
                by_connection[caller].append(words)
                continue
            caller = f"{command['client_address']}:{command['client_port']}"
            by_connection[caller].append(words)
    scanners = {c["addr"] for c in redis.Redis.from_url(url).client_list() if c.get("name") == CLIENT_NAME}
    counted: collections.Counter[str] = collections.Counter()
    for connection, sent in by_connection.items():
        if connection in scanners or any(word.startswith("dl:") for words in sent for word in words[1:2]):
            continue
        counted.update(" ".join(words[:2])[:40].lower() for words in sent)
    return counted


def measure_job_and_idle_worker(folder: Path, jobs: int) -> tuple[float, collections.Counter[str]]:
    """µs of Redis CPU per no-op job through the real API and worker (Redis' cron subtracted), and the
    commands Celery sends in IDLE_WATCH seconds of an idle worker and API."""
    from bench.overhead import TINY_MODEL, Client
    from bench.overhead import write_modes as overhead_modes

    server = start_redis(folder / "redis-job")
    env = stack_env(server.url, overhead_modes(folder, TINY_MODEL), folder / "store", ROUTER_INTERVAL=str(INTERVAL))
    stack = Stack(env, folder)
    try:
        probe = server.client()
        cron = idle_rate(probe, 3.0)
        stack.start_worker({"WORKER_BACKEND": "noop"})
        client = Client(stack.start_api())
        body = {"prompt": "p", "size": "64x64", "seed": 1}
        for _ in range(10):
            client.generate(body)
        time.sleep(3)
        idle_commands = celery_commands(server.url, IDLE_WATCH)
        idle_cpu = idle_rate(probe, 5.0) - cron
        began, before = time.monotonic(), redis_cpu(probe)
        for _ in range(jobs):
            client.generate(body)
        job = (redis_cpu(probe) - before - (idle_cpu + cron) * (time.monotonic() - began)) / jobs
    finally:
        stack.stop()
        server.stop()
    return job, idle_commands


def sanity_process(url: str, modes_file: str, names: list[str], window: tuple[float, float], queue) -> None:
    """Tick ``names``' routers in turn, with no pause (as a fleet large enough to keep Redis busy would),
    until the window ends; count the ticks inside it."""
    client = redis.Redis.from_url(url)
    registry = ModesRegistry(client, Path(modes_file))
    routers = [make_router(client, registry, name) for name in names]
    ticks = held = 0
    while time.time() < window[1]:
        for router in routers:
            router.tick()
            if window[0] <= time.time() < window[1]:
                ticks += 1
                held += router._allocator.holding
    queue.put((ticks, held))


def sanity(url: str, modes_file: Path, terms: Terms, routers: int, idle: float, seconds: float = 20.0) -> str:
    """Real router loops in several processes, against the model's terms for the ticks they made."""
    client = redis.Redis.from_url(url)
    client.delete("dl:allocator:torch", "dl:summary:torch")
    processes = 4
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    window = (time.time() + 15.0, time.time() + 15.0 + seconds)  # past the start-up: imports, first moves
    names = [[f"sanity-{p}-{i}" for i in range(routers // processes)] for p in range(processes)]
    workers = [ctx.Process(target=sanity_process, args=(url, str(modes_file), g, window, queue)) for g in names]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, window[0] - time.time()))
    before = redis_cpu(client)
    time.sleep(max(0.0, window[1] - time.time()))
    spent = redis_cpu(client) - before - idle * seconds
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    ticks, held = sum(r[0] for r in results), sum(r[1] for r in results)
    entries = sum(len(g) for g in names) * seconds / ENTRY_EVERY
    model = ticks * terms.tick + held * terms.allocator + entries * terms.entry
    return (
        f"sanity: {sum(len(g) for g in names)} router loops in {processes} processes, {ticks} ticks in {seconds:g} s "
        f"({held} as allocator): measured {spent / ticks:.1f} µs of Redis CPU a tick, model {model / ticks:.1f}: "
        f"{spent / model:.2f}x"
    )


def fleet_at(share: float, rates: list[tuple[int, float]]) -> int:
    """The fleet whose Redis CPU is ``share`` of a core, interpolating the per-worker cost between sizes measured."""
    sizes = [n for n, _ in rates]

    def total(n: float) -> float:
        below = max([s for s in sizes if s <= n], default=sizes[0])
        above = min([s for s in sizes if s >= n], default=sizes[-1])
        per = dict(rates)
        if below == above:
            return n * per[below]
        t = (n - below) / (above - below)
        return n * (per[below] + t * (per[above] - per[below]))

    low, high = 1.0, 10.0 * sizes[-1]
    while high - low > 1:
        mid = (low + high) / 2
        low, high = (mid, high) if total(mid) < share * CORE else (low, mid)
    return int(low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=50)
    parser.add_argument("--sizes", default="100,1000,3000,10000")
    parser.add_argument("--job-every", type=float, default=5.0, help="seconds between a busy worker's jobs")
    parser.add_argument("--steps", type=int, default=25, help="steps (progress reports) a job")
    parser.add_argument(
        "--busy-share", type=float, default=1.0, help="share of --job-every a job runs (its steps span all of it)"
    )
    parser.add_argument("--jobs", type=int, default=300, help="no-op jobs through the real API and worker")
    parser.add_argument("--sanity", type=int, default=60, help="router loops in the sanity run (0: none)")
    parser.add_argument("--router-from", help="measure the router tick of tasks/router.py at this git revision")
    args = parser.parse_args()
    old_router = router_from(args.router_from) if args.router_from else None
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-controlplane-"))
    print(
        f"command: python -m bench.controlplane --modes {args.modes} --sizes {args.sizes} "
        f"--job-every {args.job_every:g} --steps {args.steps} --busy-share {args.busy_share:g} --jobs {args.jobs} "
        f"--sanity {args.sanity}" + (f" --router-from {args.router_from}" if args.router_from else "")
    )
    job, idle_commands = measure_job_and_idle_worker(folder, args.jobs)
    server = start_redis(folder / "redis")
    try:
        client = server.client()
        modes_file = write_modes(folder / "modes", args.modes)
        registry = ModesRegistry(client, modes_file)
        idle = idle_rate(client)
        terms = []
        for workers in sizes:
            registry.reload()
            terms.append(measure_terms(client, registry, workers, idle, old_router))
        command = per_call(client, client.ping, 4000, idle)
        restorer = Restorer(lambda: app.connection_for_write(server.url), every=0)
        scan = per_call(client, restorer, 400, idle)
        restorer.close()
        celery_rate = sum(idle_commands.values()) / IDLE_WATCH
        idle_worker = celery_rate * command
        print(f"Redis cron {idle:.0f} µs/s (subtracted); {args.modes} modes, {WAITING_PER_MODE} jobs waiting each")
        print(
            f"per operation: job {job:.0f} µs (real API + noop worker); an idle worker and API send Celery's "
            f"{celery_rate:.2f} commands/s, at {command:.1f} µs a command (PING): {idle_worker:.0f} µs/s"
        )
        print(
            "  Celery's idle commands a second: "
            + ", ".join(f"{name} {n / IDLE_WATCH:.2f}" for name, n in idle_commands.most_common())
        )
        print(f"the allocator's scan of kombu's unacked index: {scan:.1f} µs every {RESTORE_EVERY:g} s")
        print("workers | tick µs | own entry µs | allocator µs | heartbeat µs | lease µs | progress µs")
        for t in terms:
            print(
                f"{t.workers:>7} | {t.tick:7.1f} | {t.entry:12.1f} | {t.allocator:12.0f} | {t.heartbeat:12.1f} | "
                f"{t.lease:8.1f} | {t.progress:11.1f}"
            )
        ticks = ticks_a_second(args.job_every, args.busy_share, Settings.from_env().router_starvation)
        print(
            f"busy fleet: a job every {args.job_every:g} s per worker running {args.busy_share:.0%} of it, "
            f"{args.steps} steps, {ticks:.2f} router ticks a second; µs of Redis CPU a second"
        )
        rates = []
        for t in terms:
            parts = t.per_second(job, idle_worker, scan, args.job_every, args.steps, ticks)
            total = sum(parts.values())
            rates.append((t.workers, total / t.workers))
            shown = ", ".join(f"{k} {v:,.0f}" for k, v in parts.items())
            print(f"N={t.workers}: {total:,.0f} ({total / CORE:.1%} of a core): {shown}")
        if args.sanity and old_router is None:
            populate(client, 1000, list(registry.current().modes))
            print(sanity(server.url, modes_file, terms[min(1, len(terms) - 1)], args.sanity, idle))
    finally:
        server.stop()
    print(f"fleet at 50% of one Redis core: {fleet_at(0.5, rates)} workers")


if __name__ == "__main__":
    sys.exit(main())
