"""bench/router_replay.py: FIFO worked by hand, and the policy keeping two workers on their modes."""

from __future__ import annotations

from bench.router import Costs
from bench.router_replay import Outcome, affinity, fifo, policy_for

COSTS = Costs(load=1.0, step=2.0, decode=2.0, source="test", makespan_target=1.0)  # a job: 4 steps + decode, 10 s
ALTERNATING = [(0.0, 0), (0.0, 1), (1.0, 1), (2.0, 0)]  # each worker's second job is the other's mode


def test_fifo_loads_whenever_the_next_job_needs_another_mode():
    assert fifo([(0.0, 0), (0.0, 1), (1.0, 0), (2.0, 1)], COSTS) == Outcome(switches=2, makespan=20.0)
    assert fifo(ALTERNATING, COSTS) == Outcome(switches=4, makespan=21.0)


def test_the_policy_keeps_each_worker_on_its_mode_where_fifo_swaps_them():
    assert affinity(ALTERNATING, COSTS, policy_for(COSTS), scale=0.01) == Outcome(switches=2, makespan=20.0)


def test_the_dwell_is_set_in_jobs_and_never_below_a_load():
    assert policy_for(COSTS, 3).min_dwell == 30.0
    assert policy_for(COSTS, 0.05).min_dwell == COSTS.load
    assert policy_for(COSTS).min_dwell == 35.0  # bench/router.py's three and a half jobs
