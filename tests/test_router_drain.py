"""A batch's end through real API and workers: once the backend's arrivals have stopped, the
worker alone on a quiet mode joins the other mode's backlog, which nothing moves it to while
arrivals may still come (the arrival rates are counted: by demand the quiet mode keeps its
one server, and a served backlog draws no one)."""

from __future__ import annotations

import yaml

from bench.router import stamp
from tests.client import poll, submit
from tests.conftest import modes_data
from tests.processes import Stack, wait_for
from tests.test_router_e2e import records_of, serving

BURST = 30  # jobs of 0.75 s on one mode: 22 s on one worker, against a silence of 6 gaps (6 x span / 32)


def two_modes(tmp_path) -> str:
    data = modes_data()
    demo = data["modes"]["demo"]
    data.update(default_mode="first", modes={"first": demo, "second": demo})
    path = tmp_path / "two-modes.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_when_arrivals_stop_the_idle_worker_joins_the_backlog(make_stack, tmp_path):
    stack: Stack = make_stack(
        MODES_FILE=two_modes(tmp_path),
        WORKER_BACKEND="timed",
        TIMED_DECODE_SECONDS="0.75",
        BATCH_MAX="1",
    )
    base = stack.start_api()
    stack.start_worker(), stack.start_worker()
    first = wait_for(lambda: serving(base, 2), 120, "two workers serving")
    assert sorted(first.values()) == ["first", "second"], first
    quiet_one = next(name for name, mode in first.items() if mode == "second")
    # One job each: the modes' run times are measured (the batch's end needs a run time).
    assert all(poll(base, submit(base, mode=m, prompt=m)["id"])["status"] == "succeeded" for m in ("first", "second"))

    burst = [submit(base, mode="first", prompt=f"burst {i}", seed=i) for i in range(BURST)]
    assert all(poll(base, job["id"], timeout=300)["status"] == "succeeded" for job in burst)
    records = [records_of(stack).get(job["id"]) for job in burst]
    joined = [r for r in records if r["worker"] == quiet_one]
    assert joined, f"the worker on the quiet mode never joined the backlog: { ({r['worker'] for r in records}) }"
    silence = min(stamp(r["started_at"]) for r in joined) - max(stamp(r["created_at"]) for r in records)
    assert silence >= 0.75, f"it joined {silence:.2f} s after the last arrival: less than a job's run time"
