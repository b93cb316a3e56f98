"""How many event streams one API process holds while ordinary requests still answer.

One gunicorn process (gthread, API_THREADS = the most streams + 16, SSE_MAX_STREAMS = the most
streams) on a real Redis, no worker: jobs stay queued.  At each level N, N streams are open
(raw sockets, each past its first event) while ``running`` and then progress events are published
for every job at 4 a second (what a worker writes at most) and relayed to the open streams; meanwhile
``GET /api/jobs/<id>`` is timed for a few seconds.  Printed per level: its p50 and p95 against the same with no
stream open (ratios), the events the streams received against those published, and the
process's RSS.  Finally one stream beyond SSE_MAX_STREAMS must get 503 and an ordinary request
still 200.

    python -m bench.streams [--levels 0,100,200,400,800] [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis
import yaml

from jobs import events
from tests.processes import ROOT, Stack, free_port, stack_env, start_redis, wait_for

TINY_MODEL = ROOT / ".cache" / "models" / "tiny-sd15"
RESERVE = 16  # threads kept for ordinary requests
PROGRESS_HZ = 4.0
MARK = b"event: progress"
CATCH_UP = 60  # seconds the streams get to deliver what was published before a level is reported


def write_modes(folder: Path) -> Path:
    path = folder / "modes" / "modes.yaml"
    path.parent.mkdir()
    mode = {"model": TINY_MODEL.name, "default_size": "64x64", "default_steps": 4, "scheduler": "lcm"}
    path.write_text(yaml.safe_dump({"model_root": str(TINY_MODEL.parent), "modes": {"bench": mode}}))
    return path


def start_api(stack: Stack, most: int) -> tuple[str, int]:
    port = free_port()
    env = {"API_THREADS": str(most + RESERVE), "SSE_MAX_STREAMS": str(most), "QUEUE_MAX": str(most + 10)}
    argv = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "api:create_app()"]
    master = stack.spawn("api", argv, env)
    conn = lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # noqa: E731

    def healthy() -> bool:
        try:
            c = conn()
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        except OSError:
            return False

    wait_for(healthy, 60, "the API")
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return f"127.0.0.1:{port}", int(children[0])


def submit(host: str, count: int) -> list[str]:
    c = http.client.HTTPConnection(*host.split(":"), timeout=30)
    ids = []
    for i in range(count):
        c.request("POST", "/api/jobs", json.dumps({"prompt": f"stream {i}"}), {"content-type": "application/json"})
        response = c.getresponse()
        body = json.loads(response.read())
        assert response.status == 202, body
        ids.append(body["id"])
    return ids


def open_stream(host: str, job_id: str) -> socket.socket:
    """A connected stream past its response head and first event."""
    name, port = host.split(":")
    sock = socket.create_connection((name, int(port)), timeout=30)
    sock.sendall(f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = b""
    while b"event: queued" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"stream {job_id} closed: {head[:300]!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"stream {job_id}: {head[:300]!r}")
    sock.setblocking(False)
    return sock


def status_of_extra_stream(host: str, job_id: str) -> int:
    c = http.client.HTTPConnection(*host.split(":"), timeout=30)
    c.request("GET", f"/api/jobs/{job_id}/events")
    return c.getresponse().status


class Drain:
    """Reads every open stream in a thread and counts the progress events received."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.tails: dict[int, bytes] = {}  # the end of each stream's last read: a frame may span two reads
        self.received = 0
        self.lock = threading.Lock()
        self.running = True
        threading.Thread(target=self._run, daemon=True).start()

    def add(self, sock: socket.socket) -> None:
        with self.lock:
            self.selector.register(sock, selectors.EVENT_READ)

    def _run(self) -> None:
        while self.running:
            with self.lock:
                ready = self.selector.select(timeout=0.05) if self.selector.get_map() else []
            for key, _ in ready:
                tail = self.tails.get(key.fd, b"")
                data = tail + key.fileobj.recv(65536)
                self.received += data.count(MARK) - tail.count(MARK)
                self.tails[key.fd] = data[-len(MARK) :]
            if not ready:
                time.sleep(0.01)


def publish_progress(
    client: redis.Redis, ids: list[str], steps: Iterator[int], stop: threading.Event, sent: list[int]
) -> None:
    """What workers would publish for ``ids``: running (a stream sends progress only once it is), then
    steps, numbered on from the last level's (a stream sends a step once)."""
    for job_id in ids:
        events.publish(client, job_id, "running")
    while not stop.is_set():
        step = next(steps)
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.publish(events.channel(job_id), json.dumps({"event": "progress", "step": step, "total": 10**9}))
        pipe.execute()
        sent[0] += len(ids)
        stop.wait(1 / PROGRESS_HZ)


def timed_gets(host: str, job_id: str, seconds: float) -> list[float]:
    """Sequential ``GET /api/jobs/<id>`` for ``seconds``: each one's time."""
    c = http.client.HTTPConnection(*host.split(":"), timeout=30)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        c.request("GET", f"/api/jobs/{job_id}")
        response = c.getresponse()
        response.read()
        assert response.status == 200
        times.append(time.perf_counter() - start)
    return times


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(levels: list[int], seconds: float) -> None:
    most = max(levels)
    folder = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    server = start_redis(folder / "redis")
    stack = Stack(stack_env(server.url, write_modes(folder), folder / "store"), folder)
    try:
        host, pid = start_api(stack, most)
        client = redis.Redis.from_url(server.url)
        ids = submit(host, most + 1)
        drain, streams, steps = Drain(), [], itertools.count(1)
        baseline = None
        print(f"one API process: gthread, API_THREADS={most + RESERVE}, SSE_MAX_STREAMS={most}; {os.cpu_count()} CPUs")
        print("streams  GETs  GET p50 ms  p95 ms  p50 ratio  p95 ratio  events recv/sent  RSS MB")
        for level in levels:
            while len(streams) < level:
                streams.append(open_stream(host, ids[len(streams)]))
                drain.add(streams[-1])
            stop, sent = threading.Event(), [0]
            drain.received = 0
            publisher = threading.Thread(target=publish_progress, args=(client, ids[:level], steps, stop, sent))
            publisher.start()
            times = timed_gets(host, ids[-1], seconds)
            stop.set()
            publisher.join()
            caught_up = time.monotonic() + CATCH_UP
            while drain.received < sent[0] and time.monotonic() < caught_up:
                time.sleep(0.1)
            p50, p95 = percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000
            baseline = baseline or (p50, p95)
            print(
                f"{level:7d}  {len(times):5d}  {p50:10.2f}  {p95:6.2f}  {p50 / baseline[0]:9.2f}"
                f"  {p95 / baseline[1]:9.2f}  {drain.received:>8d}/{sent[0]:<8d}  {rss_mb(pid):6.1f}"
            )
        print(f"stream {most + 1} (beyond SSE_MAX_STREAMS): {status_of_extra_stream(host, ids[-1])}")
        print(f"GET /api/jobs/<id> meanwhile: {statistics.median(timed_gets(host, ids[-1], 1)) * 1000:.2f} ms")
        drain.running = False
        for sock in streams:
            sock.close()
    finally:
        stack.stop()
        server.stop()
    print("reproduce: python -m bench.streams --levels " + ",".join(map(str, levels)) + f" --seconds {seconds:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="0,100,200,400,800")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long GETs are timed at each level")
    args = parser.parse_args()
    measure([int(n) for n in args.levels.split(",")], args.seconds)


if __name__ == "__main__":
    main()
