"""What the job system costs on top of what it wraps, measured in one run.

P1: end-to-end job latency (POST /generate through the API, Redis, a worker with
    the no-op backend, the store) against a bare Celery ``apply_async().get()``
    on the same Redis; p50 and p95 ratios, and p50 against the bare task plus the HTTP
    hop (``GET /healthz``) alone: target <= 2x, with task events on.  The sides take turns of
    BLOCK jobs back to back (the first WARM of each not counted), so each runs as it would
    under a steady stream while a change in the machine's speed during the run (this VM's
    swings by a third between minutes) moves both alike; turns of one job each would let
    an idle process fall asleep between jobs, which slows the bare task most.  Also the CPU
    each side's processes spend per job, which other load on the machine barely moves.
P2: end-to-end job time against a direct pipeline call for the same job, on the
    full-size SD1.5 architecture with random weights (built into .cache/models on
    first use), 256x256, 4 LCM steps.  Target <= 1.05x.

    python -m bench.overhead [--jobs 200] [--p2-runs 5] [--skip-p2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.processes import ROOT, Stack, stack_env, start_redis

FULL_MODEL = ROOT / ".cache" / "models" / "full-sd15"
TINY_MODEL = ROOT / ".cache" / "models" / "tiny-sd15"
BLOCK, WARM = 25, 2
P2_JOB = {
    "prompt": "a lighthouse at dusk",
    "size": "256x256",
    "num_inference_steps": 4,
    "guidance_scale": 1.0,
    "seed": 1,
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_modes(folder: Path, model: Path) -> Path:
    """The bench's modes file, in a folder of its own: the API watches that folder."""
    path = folder / "modes" / "modes.yaml"
    path.parent.mkdir(exist_ok=True)
    spec = {
        "model": model.name,
        "default_size": "256x256",
        "default_steps": 4,
        "default_guidance": 1.0,
        "scheduler": "lcm",
    }
    path.write_text(yaml.safe_dump({"model_root": str(model.parent), "modes": {"bench": spec}}))
    return path


class Client:
    """A lean keep-alive HTTP client, as the raw Celery side keeps its broker connection."""

    def __init__(self, base: str) -> None:
        self._conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=600)

    def generate(self, body: dict) -> float:
        payload = json.dumps(body)
        began = time.perf_counter()
        try:
            response = self._post(payload)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self._conn.close()  # the server closed an idle keep-alive connection; reconnect
            began = time.perf_counter()
            response = self._post(payload)
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise RuntimeError(f"POST /generate answered {response.status}")
        return elapsed

    def healthz(self) -> float:
        """One ``GET /healthz``: the HTTP round trip alone, the floor under any job's latency."""
        began = time.perf_counter()
        self._conn.request("GET", "/healthz")
        self._conn.getresponse().read()
        return time.perf_counter() - began

    def _post(self, payload: str) -> http.client.HTTPResponse:
        self._conn.request("POST", "/generate", payload, {"Content-Type": "application/json"})
        response = self._conn.getresponse()
        response.read()
        return response


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's workers under its master), from /proc."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += family(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far: unlike wall time, barely moved by other load."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def p1(workdir: Path, jobs: int) -> dict[str, float]:
    redis_server = start_redis(workdir / "redis-p1")
    stack = Stack(stack_env(redis_server.url, write_modes(workdir, TINY_MODEL), workdir / "store"), workdir)
    try:
        raw_worker = stack.spawn(
            "raw-worker",
            [sys.executable, "-m", "celery", "-A", "bench.raw_celery", "worker", "--pool=solo", "--loglevel=WARNING"],
        )
        worker = stack.start_worker({"WORKER_BACKEND": "noop"})
        client = Client(stack.start_api())
        api = stack.processes[-1]
        os.environ["REDIS_URL"] = redis_server.url  # bench.raw_celery reads it at import
        from bench.raw_celery import app as raw_app

        body = {"prompt": "p", "size": "64x64", "seed": 1}
        for _ in range(10):
            client.generate(body)
            raw_app.send_task("bench.noop").get(timeout=60)

        def raw_job() -> float:
            began = time.perf_counter()
            raw_app.send_task("bench.noop").get(timeout=60)
            return time.perf_counter() - began

        ours, http_only, raw = [], [], []
        sides = [family(api.pid), [worker.pid], [raw_worker.pid]]
        before = [cpu_seconds(pids) for pids in sides]
        for _ in range(max(1, jobs // BLOCK)):
            ours += [client.generate(body) for _ in range(BLOCK)][WARM:]
            http_only += [client.healthz() for _ in range(BLOCK)][WARM:]
            raw += [raw_job() for _ in range(BLOCK)][WARM:]
        api_cpu, worker_cpu, raw_cpu = (cpu_seconds(pids) - spent for pids, spent in zip(sides, before, strict=True))
    finally:
        stack.stop()
        redis_server.stop()
    return {
        "ours_p50": percentile(ours, 0.5),
        "ours_p95": percentile(ours, 0.95),
        "raw_p50": percentile(raw, 0.5),
        "raw_p95": percentile(raw, 0.95),
        "http_p50": percentile(http_only, 0.5),
        "api_cpu": api_cpu / jobs,
        "worker_cpu": worker_cpu / jobs,
        "raw_cpu": raw_cpu / jobs,
    }


def p2(workdir: Path, runs: int) -> dict[str, float]:
    """System and direct runs alternate, both models warm, so drift hits both sides alike."""
    from workers.tiny_models import build_sd15

    build_sd15(FULL_MODEL, size="full")
    redis_server = start_redis(workdir / "redis-p2")
    # Test stacks pin OMP_NUM_THREADS=1; the worker gets as many threads as the direct call here.
    threads = str(DirectPipeline.threads())
    env = stack_env(redis_server.url, write_modes(workdir, FULL_MODEL), workdir / "store", OMP_NUM_THREADS=threads)
    stack = Stack(env, workdir)
    try:
        stack.start_worker()
        client = Client(stack.start_api())
        client.generate(P2_JOB)  # loads the model into the worker
        direct = DirectPipeline()
        direct.run()
        system_times, direct_times = [], []
        for _ in range(runs):
            system_times.append(client.generate(P2_JOB))
            direct_times.append(direct.run())
    finally:
        stack.stop()
        redis_server.stop()
    return {
        "system": statistics.median(system_times),
        "direct": statistics.median(direct_times),
        "threads": int(threads),
    }


class DirectPipeline:
    """The same job as one plain diffusers call in this process."""

    def __init__(self) -> None:
        from workers.offline import force_offline

        force_offline()
        import diffusers
        import torch

        diffusers.utils.logging.disable_progress_bar()
        self._torch = torch
        self._pipe = diffusers.StableDiffusionPipeline.from_pretrained(FULL_MODEL, local_files_only=True)
        self._pipe.scheduler = diffusers.LCMScheduler.from_config(self._pipe.scheduler.config)
        self._pipe.set_progress_bar_config(disable=True)

    @staticmethod
    def threads() -> int:
        import torch

        return torch.get_num_threads()

    def run(self) -> float:
        torch = self._torch
        began = time.perf_counter()
        with torch.inference_mode():
            image = self._pipe(
                prompt=P2_JOB["prompt"],
                width=256,
                height=256,
                num_inference_steps=4,
                guidance_scale=1.0,
                generator=torch.Generator().manual_seed(P2_JOB["seed"]),
            ).images[0]
        image.save(Path(tempfile.gettempdir()) / "dreamlab-direct.png")
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="P1 jobs per side")
    parser.add_argument("--p2-runs", type=int, default=5, help="P2 measured runs per side (median)")
    parser.add_argument("--skip-p2", action="store_true")
    args = parser.parse_args()
    print(
        f"command: python -m bench.overhead --jobs {args.jobs} --p2-runs {args.p2_runs}"
        + (" --skip-p2" if args.skip_p2 else "")
    )
    with tempfile.TemporaryDirectory(prefix="dreamlab-bench-") as tmp:
        r = p1(Path(tmp), args.jobs)
        print(f"P1 no-op job, {args.jobs} jobs each side, in turns of {BLOCK} back to back")
        print(f"   ours (POST /generate): p50 {r['ours_p50'] * 1e3:.2f} ms  p95 {r['ours_p95'] * 1e3:.2f} ms")
        print(f"   raw apply_async().get(): p50 {r['raw_p50'] * 1e3:.2f} ms  p95 {r['raw_p95'] * 1e3:.2f} ms")
        p50, p95 = r["ours_p50"] / r["raw_p50"], r["ours_p95"] / r["raw_p95"]
        print(f"   ratio p50 {p50:.2f}x  p95 {p95:.2f}x")
        floor = (r["raw_p50"] + r["http_p50"]) / r["raw_p50"]
        print(f"   GET /healthz p50 {r['http_p50'] * 1e3:.2f} ms: the HTTP hop alone puts the floor at {floor:.2f}x")
        beyond = r["ours_p50"] / (r["raw_p50"] + r["http_p50"])
        print(f"   ours against raw + the HTTP hop: p50 {beyond:.2f}x  (target <= 2x)")
        print(
            f"   CPU per job: API {r['api_cpu'] * 1e3:.2f} ms, worker {r['worker_cpu'] * 1e3:.2f} ms;"
            f" raw Celery worker {r['raw_cpu'] * 1e3:.2f} ms per task"
        )
        if not args.skip_p2:
            r = p2(Path(tmp), args.p2_runs)
            print(f"P2 full-size SD1.5 (random weights), 256x256, 4 LCM steps, median of {args.p2_runs} alternating")
            print(f"   torch threads on both sides: {r['threads']}")
            print(f"   end-to-end job {r['system']:.2f} s  direct pipeline call {r['direct']:.2f} s")
            print(f"   ratio {r['system'] / r['direct']:.3f}x  (target <= 1.05x)")


if __name__ == "__main__":
    main()
