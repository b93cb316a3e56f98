"""Allocation by demand through real API and workers: the API counts each mode's arrivals as it
admits jobs, the allocator turns the counts and the jobs' run times into shares, and a worker
moves to a mode below its share though no backlog rule would move it (ROUTER_SWITCH_COST=50:
a served mode would need 50 waiting jobs per server to draw one)."""

from __future__ import annotations

import json

import redis
import yaml

from jobs.keys import arrivals_key, summary_key
from tests.client import poll, submit
from tests.conftest import modes_data
from tests.processes import Stack, wait_for
from tests.test_router_e2e import serving


def two_modes(tmp_path) -> str:
    """A fast mode listed first (the third idle worker joins it) and a heavier one."""
    data = modes_data()
    fast = data["modes"]["demo"]
    heavy = {**fast, "default_size": "128x128", "default_steps": 30}
    data.update(default_mode="fast", modes={"fast": fast, "heavy": heavy})
    path = tmp_path / "two-modes.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def counts(base: str) -> dict[str, int] | None:
    """Mode -> its servers, once three workers beat and each serves a mode."""
    served = serving(base, 3)
    return None if served is None else {m: list(served.values()).count(m) for m in ("fast", "heavy")}


def test_a_burst_on_a_mode_draws_a_worker_from_a_mode_above_its_share(make_stack, tmp_path):
    stack: Stack = make_stack(MODES_FILE=two_modes(tmp_path), ROUTER_SWITCH_COST="50", BATCH_MAX="1")
    base = stack.start_api()
    stack.start_worker(), stack.start_worker()
    wait_for(lambda: serving(base, 2), 120, "two workers serving")
    stack.start_worker()
    assert wait_for(lambda: counts(base), 120, "three workers serving") == {"fast": 2, "heavy": 1}
    # One job each: the modes' run times are measured (until then their shares are unknown).
    assert all(poll(base, submit(base, mode=m, prompt=m)["id"])["status"] == "succeeded" for m in ("fast", "heavy"))
    assert counts(base) == {"fast": 2, "heavy": 1}, "one job each moves nobody"

    burst = [submit(base, mode="heavy", prompt=f"burst {i}", seed=i) for i in range(16)]
    wait_for(lambda: counts(base) == {"fast": 1, "heavy": 2}, 240, "a fast worker to join heavy")
    assert all(poll(base, job["id"], timeout=600)["status"] == "succeeded" for job in burst)

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    assert int(client.get(arrivals_key("torch", "heavy"))) == 17
    assert int(client.get(arrivals_key("torch", "fast"))) == 1
    heavy = json.loads(client.get(summary_key("torch")))["modes"]["heavy"]
    assert heavy[2] > 0 and heavy[3] > 0 and heavy[4] > 0, f"arrivals, span, run time counted: {heavy}"
