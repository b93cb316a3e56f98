"""A randomized soak of the job path: no job lost, none completed twice, nothing left over.

Real worker processes run the timed backend (workers/timed.py: the queues, turns,
leases, batching, router and heartbeats are the real code; only inference sleeps)
behind the API under gunicorn, on a Redis that keeps an append-only file.  For each
configuration (ROUTER affinity and fifo, batching on and off) a seeded schedule
submits jobs over several modes in bursts with random priorities, queues a few mode
switches, cancels jobs at random moments, SIGKILLs random workers (each replaced at
once) and restarts Redis once while jobs run.  Then every job that Redis holds is
checked: it ended (succeeded, canceled, or failed with a message) within the bound,
it completed at most once, and no message, lease, waiting or running entry is left.
A job still unfinished at the bound is listed with its record; nothing waits forever.

    python -m bench.soak [--jobs 5000] [--workers 8] [--seed 1] [--configs all|quick]

The last line reads ``jobs <n> ended <n> lost <k> twice <t>``; the exit status is 1
unless lost, twice and the leftovers are all 0.  The seed fixes the schedule; the
interleavings it meets are the machine's.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from bench.router import write_modes
from jobs.keys import PREFIX, RUNNING_INDEX, WORKERS_PATTERN
from jobs.records import TERMINAL
from tasks.lease import UNACKED_INDEX
from tests.processes import RedisServer, Stack, stack_env, start_redis, wait_for

MODES = ("alpha", "beta", "gamma", "delta")
CONFIGS = {
    "all": [("affinity", 4), ("affinity", 1), ("fifo", 4), ("fifo", 1)],
    "quick": [("affinity", 4), ("fifo", 1)],
}
SUBMIT_RATE = 25.0  # jobs a second, offered in bursts
CANCEL_SHARE, SWITCH_SHARE = 0.1, 0.02
KILL_EVERY = 4.0  # seconds of schedule per worker kill, on average
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, order=True)
class Event:
    at: float
    kind: str  # submit, switch, cancel, kill, restart
    index: int = 0  # the job's number (submit, switch, cancel) or the worker's slot (kill)
    mode: str = ""
    priority: int = 0


def schedule(jobs: int, workers: int, rng: random.Random) -> list[Event]:
    """Bursts of submissions (a few of them switches), cancels after them, kills and one Redis restart."""
    events, at, index = [], 0.0, 0
    while index < jobs:
        burst = min(rng.randint(1, 15), jobs - index)
        for _ in range(burst):
            mode = rng.choices(MODES, (0.4, 0.3, 0.2, 0.1))[0]
            kind = "switch" if rng.random() < SWITCH_SHARE else "submit"
            events.append(Event(at, kind, index, mode, rng.choice((0, 0, 0, -3, 5, 10))))
            if rng.random() < CANCEL_SHARE:
                events.append(Event(at + rng.uniform(0, 1.5), "cancel", index))
            index += 1
        at += rng.expovariate(SUBMIT_RATE / burst)
    events += [Event(rng.uniform(0, at), "kill", rng.randrange(workers)) for _ in range(max(2, int(at / KILL_EVERY)))]
    events.append(Event(rng.uniform(0.3 * at, 0.6 * at), "restart"))
    return sorted(events)


@dataclass
class Fleet:
    """The processes of one configuration, and what the schedule did to them."""

    server: RedisServer
    stack: Stack
    base: str
    workers: list = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)
    kills: int = 0

    def start_worker(self, slot: int | None = None) -> None:
        process = self.stack.spawn("worker", [sys.executable, "-m", "tasks.worker"])
        if slot is None:
            self.workers.append(process)
        else:
            self.workers[slot] = process

    def run(self, events: list[Event]) -> None:
        session, began = requests.Session(), time.monotonic()
        for event in events:
            time.sleep(max(0.0, event.at - (time.monotonic() - began)))
            if event.kind in ("submit", "switch"):
                self._submit(session, event)
            elif event.kind == "cancel" and event.index in self.ids:
                url = f"{self.base}/api/jobs/{self.ids[event.index]}/cancel"
                _send(lambda url=url: session.post(url, timeout=30))
            elif event.kind == "kill":
                self.workers[event.index].send_signal(signal.SIGKILL)
                self.workers[event.index].wait()
                self.kills += 1
                self.start_worker(event.index)
            elif event.kind == "restart":
                # In a thread: submissions go on (and get 503s, then retry) while Redis is away.
                threading.Thread(target=self.server.restart, daemon=True).start()

    def _submit(self, session: requests.Session, event: Event) -> None:
        if event.kind == "switch":
            path, body = "/api/modes/switch", {"mode": event.mode}
        else:
            body = {"mode": event.mode, "prompt": f"soak {event.index}", "seed": event.index}
            path, body = "/api/jobs", {**body, "priority": event.priority}
        response = _send(lambda: session.post(f"{self.base}{path}", json=body, timeout=30), until_ok=True)
        self.ids[event.index] = response.json()["id"]


def _send(request, until_ok: bool = False, patience: float = 60.0) -> requests.Response | None:
    """Send ``request``; while Redis restarts (503, or no answer), try again until ``until_ok`` is met."""
    deadline = time.monotonic() + patience
    while True:
        try:
            response = request()
            if not until_ok or response.status_code in (200, 202):
                return response
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API refused or failed a request for a minute; see the logs")
        time.sleep(0.2)


def job_records(client: redis.Redis) -> dict[str, dict]:
    """Every job record in Redis, admitted over HTTP or not (an answer lost in a restart still counts)."""
    records = {}
    for key in client.scan_iter(f"{PREFIX}:job:*"):
        name = key.decode()
        if name.count(":") == 2:
            raw = client.hgetall(key)
            records[name.rsplit(":", 1)[1]] = {k.decode(): v.decode() for k, v in raw.items()}
    return records


def unfinished(records: dict[str, dict]) -> list[str]:
    return [job_id for job_id, r in records.items() if r.get("status") not in TERMINAL]


def leftovers(client: redis.Redis) -> dict[str, int]:
    """Messages, leases and index entries that remain once every job has ended."""
    queues = [k for k in client.scan_iter("gen.*") if client.type(k) == b"list"]
    return {
        "messages": sum(client.llen(k) for k in queues),
        "unacked": client.hlen("unacked"),
        "unacked_index": client.zcard(UNACKED_INDEX),
        "leases": sum(1 for _ in client.scan_iter(f"{PREFIX}:lease:*")),
        "waiting": sum(client.zcard(k) for k in client.scan_iter(f"{PREFIX}:waiting:*")),
        "running": client.zcard(RUNNING_INDEX),
    }


# What the log says when a safety net caught a job (tasks/orphans.py, tasks/stranded.py, tasks/redis_wait.py).
REPAIRS = {
    "orphans requeued": "was running with no lease",
    "stranded turns given a message": "with no message left to deliver it",
    "turns that waited for Redis": "Redis failed this delivery before it claimed a job",
}


def repairs(folder: Path) -> dict[str, int]:
    """How often each safety net caught a job in this configuration's process logs."""
    text = "\n".join(log.read_text(errors="replace") for log in folder.glob("*.log"))
    return {name: text.count(line) for name, line in REPAIRS.items()}


def print_story(folder: Path, job_id: str, limit: int = 200) -> None:
    """The process log lines that name ``job_id``, and those naming a job that its own lines name
    (the delivery that ran it, or the job its delivery ran), in file order: how it was lost."""
    logs = sorted(folder.glob("*.log"))
    lines = [(log.name, line) for log in logs for line in log.read_text(errors="replace").splitlines()]
    related = {job_id} | {other for _, line in lines if job_id in line for other in JOB_ID.findall(line)}
    story = [f"    {name}: {line}" for name, line in lines if related.intersection(JOB_ID.findall(line))]
    print("\n".join(story[-limit:]) or "    (no log line names it)")


def soak(router: str, batch_max: int, args: argparse.Namespace, seed: int, workdir: Path) -> dict[str, int]:
    folder = workdir / f"{router}-{batch_max}"
    folder.mkdir()
    server = start_redis(folder / "redis", aof=True)
    env = stack_env(
        server.url,
        write_modes(folder, MODES),
        folder / "store",
        ROUTER=router,
        BATCH_MAX=str(batch_max),
        QUEUE_MAX="100000",
        WORKER_BACKEND="timed",
        TIMED_LOAD_SECONDS="0.05",
        TIMED_STEP_SECONDS="0.01",
        TIMED_DECODE_SECONDS="0.02",
        LEASE_TTL="3",
        VISIBILITY_TIMEOUT="6",
        ROUTER_INTERVAL="0.2",
        ROUTER_STARVATION="2",
    )
    fleet = Fleet(server, Stack(env, folder), "")
    client = server.client()
    try:
        for _ in range(args.workers):
            fleet.start_worker()
        wait_for(lambda: len(list(client.scan_iter(WORKERS_PATTERN))) >= args.workers, 300, "every worker's heartbeat")
        fleet.base = fleet.stack.start_api()
        began = time.monotonic()
        fleet.run(schedule(args.jobs, args.workers, random.Random(seed)))
        deadline = time.monotonic() + args.bound
        while unfinished(job_records(client)) and time.monotonic() < deadline:
            time.sleep(0.5)
        records = job_records(client)
        left = unfinished(records)
        for job_id in left:
            print(f"  unfinished {job_id}: {records[job_id]}")
            print_story(folder, job_id)
        settle = time.monotonic() + 30
        while any(leftovers(client).values()) and time.monotonic() < settle:
            time.sleep(0.5)
        extra = leftovers(client)
    finally:
        fleet.stack.stop()
        server.stop()
    caught = ", ".join(f"{name} {count}" for name, count in repairs(folder).items())
    twice = sum(int(r.get("completions", 0)) > 1 for r in records.values())
    mute = sum(r.get("status") == "failed" and "message" not in r.get("error", "") for r in records.values())
    counts = {s: sum(r.get("status") == s for r in records.values()) for s in TERMINAL}
    print(
        f"{router:>8} BATCH_MAX={batch_max}: {len(records)} jobs in {time.monotonic() - began:.0f} s, "
        f"{fleet.kills} worker kills, 1 Redis restart; {counts}; leftovers {extra}; {caught}"
    )
    return {"jobs": len(records), "lost": len(left), "twice": twice, "mute": mute, "leftover": sum(extra.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000, help="jobs in all, shared by the configurations")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--configs", choices=sorted(CONFIGS), default="all")
    parser.add_argument("--bound", type=float, default=120, help="seconds after the schedule for every job to end")
    args = parser.parse_args(argv)
    configs = CONFIGS[args.configs]
    args.jobs //= len(configs)
    print(f"command: python -m bench.soak {' '.join(argv if argv is not None else sys.argv[1:])}")
    totals = {"jobs": 0, "lost": 0, "twice": 0, "mute": 0, "leftover": 0}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        for number, (router, batch_max) in enumerate(configs):
            result = soak(router, batch_max, args, args.seed * 100 + number, Path(tmp))
            totals = {k: totals[k] + result[k] for k in totals}
    ended = totals["jobs"] - totals["lost"]
    print(f"failed without a message {totals['mute']}; leftovers {totals['leftover']}")
    print(f"jobs {totals['jobs']} ended {ended} lost {totals['lost']} twice {totals['twice']}")
    return 0 if totals["lost"] == totals["twice"] == totals["mute"] == totals["leftover"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
