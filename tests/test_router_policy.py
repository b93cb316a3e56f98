"""The mode-affinity policy on its own: pure decisions from backlogs and servers."""

from __future__ import annotations

from tasks.router_policy import Backlog, RouterPolicy, WorkerView

POLICY = RouterPolicy(min_dwell=2.0, starvation=30.0)
EMPTY = Backlog(0)


def test_a_worker_stays_while_its_mode_has_work():
    backlogs = {"a": Backlog(3, 5.0), "b": Backlog(50, 20.0)}
    assert POLICY.choose(WorkerView("a", dwell=100), backlogs, {"a": 1, "b": 1}) is None


def test_an_idle_worker_moves_to_the_most_underserved_mode():
    backlogs = {"a": EMPTY, "b": Backlog(2, 1.0), "c": Backlog(9, 1.0)}
    assert POLICY.choose(WorkerView("a", dwell=100), backlogs, {"a": 1, "b": 0, "c": 2}) == "b"
    assert POLICY.choose(WorkerView("a", dwell=100), backlogs, {"a": 1, "b": 0, "c": 0}) == "c"


def test_age_weighs_as_well_as_count():
    backlogs = {"a": EMPTY, "b": Backlog(2, 0.0), "c": Backlog(1, 60.0)}
    assert POLICY.choose(WorkerView("a", dwell=100), backlogs, {"a": 1}) == "c"


def test_an_idle_worker_joins_a_served_mode_when_its_queue_outweighs_a_switch():
    me = WorkerView("a", dwell=100)
    assert POLICY.choose(me, {"a": EMPTY, "b": Backlog(2)}, {"a": 1, "b": 2}) is None
    assert POLICY.choose(me, {"a": EMPTY, "b": Backlog(3)}, {"a": 1, "b": 2}) == "b"
    costly = RouterPolicy(switch_cost=10.0)
    assert costly.choose(me, {"a": EMPTY, "b": Backlog(20)}, {"a": 1, "b": 2}) is None
    assert costly.choose(me, {"a": EMPTY, "b": Backlog(21)}, {"a": 1, "b": 2}) == "b"


def test_nothing_waiting_anywhere_keeps_the_loaded_mode():
    assert POLICY.choose(WorkerView("a", dwell=100), {"a": EMPTY, "b": EMPTY}, {"a": 1}) is None


def test_min_dwell_holds_a_worker_that_just_moved():
    backlogs = {"a": EMPTY, "b": Backlog(5, 100.0)}
    assert POLICY.choose(WorkerView("a", dwell=1.0), backlogs, {"a": 1}) is None
    assert POLICY.choose(WorkerView("a", dwell=2.0), backlogs, {"a": 1}) == "b"


def test_a_pin_holds_a_worker_even_when_another_mode_starves():
    backlogs = {"a": EMPTY, "b": Backlog(5, 100.0)}
    assert POLICY.choose(WorkerView("a", dwell=100, pinned=True), backlogs, {"a": 1}) is None


def test_a_starving_mode_pulls_a_worker_off_a_busy_queue():
    young = {"a": Backlog(10, 5.0), "b": Backlog(1, 29.0)}
    old = {"a": Backlog(10, 5.0), "b": Backlog(1, 30.0)}
    me = WorkerView("a", dwell=100)
    assert POLICY.choose(me, young, {"a": 1}) is None
    assert POLICY.choose(me, old, {"a": 1}) == "b"
    assert POLICY.choose(me, old, {"a": 1, "b": 1}) is None, "a served mode is not starving"


def test_a_redelivered_job_without_an_age_starves_by_how_long_it_was_unserved():
    backlogs = {"a": Backlog(10, 5.0), "b": Backlog(1, 0.0, unserved_for=31.0)}
    assert POLICY.choose(WorkerView("a", dwell=100), backlogs, {"a": 1}) == "b"


def test_the_longest_starving_mode_goes_first():
    backlogs = {"a": Backlog(10), "b": Backlog(1, 40.0), "c": Backlog(1, 90.0)}
    assert POLICY.choose(WorkerView("a", dwell=100), backlogs, {"a": 1}) == "c"


def test_a_new_worker_takes_the_backlog_or_else_spreads_out():
    assert POLICY.choose(WorkerView(None), {"a": Backlog(1), "b": Backlog(4)}, {}) == "b"
    assert POLICY.choose(WorkerView(None), {"a": EMPTY, "b": EMPTY, "c": EMPTY}, {"a": 2, "b": 1}) == "c"
    assert POLICY.choose(WorkerView(None), {"a": EMPTY, "b": EMPTY}, {}) == "a", "ties: config order"


def test_a_worker_whose_mode_was_removed_chooses_again_at_once():
    assert POLICY.choose(WorkerView("gone", dwell=0.0), {"a": EMPTY}, {}) == "a"


def test_ties_prefer_a_mode_the_worker_holds_in_host_ram():
    backlogs = {"a": EMPTY, "b": Backlog(3), "c": Backlog(3)}
    assert POLICY.choose(WorkerView("a", dwell=100, cached=frozenset({"b"})), backlogs, {"a": 1}) == "b"
    assert POLICY.choose(WorkerView("a", dwell=100, cached=frozenset({"c"})), backlogs, {"a": 1}) == "c"


def test_no_modes_no_choice():
    assert POLICY.choose(WorkerView(None), {}, {}) is None


def test_an_idle_worker_joins_a_served_mode_only_if_its_own_keeps_an_idle_server():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": EMPTY, "b": Backlog(5)}
    assert POLICY.choose(me, backlogs, {"a": 2, "b": 1}, idle={"a": 1, "b": 0}) is None, "a would keep no idle server"
    assert POLICY.choose(me, backlogs, {"a": 2, "b": 1}, idle={"a": 2, "b": 0}) == "b"
    assert POLICY.choose(me, {"a": EMPTY, "c": Backlog(1)}, {"a": 1}, idle={"a": 1}) == "c", "unserved: always"


def test_jobs_an_idle_server_will_take_draw_no_second_worker():
    # The worker that just moved to b for its job is idle there until it takes it: b needs nobody else.
    me = WorkerView("a", dwell=100)
    backlogs = {"a": EMPTY, "b": Backlog(2), "c": EMPTY}  # b: a job more than a switch (1) per server
    assert POLICY.choose(me, backlogs, {"a": 1, "b": 1}, idle={"a": 1, "b": 1}) is None
    assert POLICY.choose(me, backlogs, {"a": 1, "b": 1}, idle={"a": 1, "b": 0}) == "b"
    assert POLICY.choose(me, {**backlogs, "b": Backlog(3)}, {"a": 1, "b": 1}, idle={"a": 1, "b": 1}) == "b"


DEMAND = RouterPolicy(min_dwell=2.0, starvation=30.0, demand=True, job_time=10.0, staffing=1.0, leave_confidence=1.5)


def counted(arrived: int, waiting: int = 0, span: float = 100.0, job_time: float = 0.0) -> Backlog:
    """A mode with ``arrived`` jobs admitted over ``span`` seconds."""
    return Backlog(waiting, arrived=arrived, span=span, job_time=job_time)


def test_a_share_follows_the_arrival_rate_and_its_confidence():
    assert DEMAND.share(counted(40)) == 6  # 4 busy on average, and 2 for bursts
    assert DEMAND.share(counted(40, job_time=20.0)) == 11  # a measured job time wins over the policy's
    assert DEMAND.share(counted(0)) == 0
    assert DEMAND.share(counted(0, waiting=1)) == 1  # waiting work keeps a server whatever its rate
    assert DEMAND.share(counted(40), confidence=2.0) > 6 > DEMAND.share(counted(40), confidence=-2.0)
    assert DEMAND.share(counted(0), confidence=2.0) >= 1, "no arrivals yet: maybe a slow mode"
    assert DEMAND.share(Backlog(0), confidence=1.0) == float("inf"), "not counted yet: nobody leaves"
    assert DEMAND.share(Backlog(0), confidence=-2.0) == 0, "... and nobody joins"


def test_the_spare_servers_are_spread_by_the_square_root_of_the_busy_ones():
    backlogs = {"a": counted(400), "b": counted(100)}  # 40 and 10 busy
    assert DEMAND.spare(backlogs, {"a": 50, "b": 15}) == 1.0, "capped at staffing"
    assert abs(DEMAND.spare(backlogs, {"a": 40, "b": 13}) - 3 / (40**0.5 + 10**0.5)) < 1e-9


def test_by_demand_only_a_mode_surely_above_its_share_gives_a_worker_to_one_surely_below():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": counted(400, span=1000.0), "b": counted(4000, span=1000.0)}  # 4 and 40 busy
    # a's share at its upper bound: 7 (4.3 busy, 2.1 spare); b's at its lower bound: 45 (38.8 busy, 6.2 spare)
    assert DEMAND.choose(me, backlogs, {"a": 7, "b": 44}) is None, "a is not surely over"
    assert DEMAND.choose(me, backlogs, {"a": 9, "b": 44}) == "b"
    assert DEMAND.choose(me, backlogs, {"a": 9, "b": 46}) is None, "b is not surely short"
    # A fleet with no spare servers: a's share is 4 at its estimate, 5 at its upper bound.
    assert DEMAND.choose(me, backlogs, {"a": 5, "b": 30}) is None, "a is over its share, but not surely"
    assert DEMAND.choose(me, backlogs, {"a": 6, "b": 30}) == "b"
    young = {m: counted(b.arrived // 100, span=10.0) for m, b in backlogs.items()}  # the same rates, counted briefly
    assert DEMAND.choose(me, young, {"a": 9, "b": 44}) is None, "too little evidence to move"


def test_by_demand_the_mode_furthest_below_its_share_and_waiting_goes_first():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": counted(0, span=1000.0), "b": counted(4000, span=1000.0), "c": counted(400, span=1000.0)}
    assert DEMAND.choose(me, backlogs, {"a": 5, "b": 30, "c": 1}) == "c"  # c: 1 of its lower share; b: 30
    assert DEMAND.choose(me, {**backlogs, "b": counted(4000, 1, span=1000.0)}, {"a": 5, "b": 30, "c": 1}) == "b"


def test_by_demand_an_unserved_waiting_mode_and_starvation_still_win():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": counted(40), "b": Backlog(1, oldest_wait=60.0)}
    assert DEMAND.choose(me, backlogs, {"a": 3}) == "b"
    assert DEMAND.choose(me, {"a": counted(400), "b": Backlog(1)}, {"a": 1}) == "b", "a's only server may go"
    assert DEMAND.choose(me, {"a": counted(400), "b": Backlog(1)}, {"a": 3}, {"a": 1}) is None, "a keeps no idle one"


def test_a_lone_short_job_with_no_server_waits_a_dwell_for_company():
    # A job of 0.5 s against a 2 s dwell: moving for it alone costs a load per job, so the worker
    # goes once the mode's waiting work fills the dwell, or its oldest job has waited a dwell.
    me = WorkerView("a", dwell=100)
    short = RouterPolicy(min_dwell=2.0, starvation=30.0, job_time=0.5)
    assert short.choose(me, {"a": EMPTY, "b": Backlog(1, 1.9)}, {"a": 1}) is None
    assert short.choose(me, {"a": EMPTY, "b": Backlog(1, 2.0)}, {"a": 1}) == "b"
    assert short.choose(me, {"a": EMPTY, "b": Backlog(4, 0.1)}, {"a": 1}) == "b"
    assert POLICY.choose(me, {"a": EMPTY, "b": Backlog(1)}, {"a": 1}) == "b", "run time unknown: at once"


def test_a_served_mode_draws_a_worker_only_for_work_that_fills_a_dwell():
    me = WorkerView("a", dwell=100)
    short = RouterPolicy(min_dwell=2.0, starvation=30.0, switch_cost=0.2, job_time=0.5)
    # b's 7 waiting jobs of 0.5 s keep b's server and a newcomer busy 1.75 s each: less than a dwell.
    assert short.choose(me, {"a": EMPTY, "b": Backlog(7)}, {"a": 1, "b": 1}, {"a": 1, "b": 0}) is None
    assert short.choose(me, {"a": EMPTY, "b": Backlog(8)}, {"a": 1, "b": 1}, {"a": 1, "b": 0}) == "b"


# A batch's end: 60 jobs over 600 s (a gap of 10 s on average) of 20 s each; 6 gaps = 60 s.
BATCH = RouterPolicy(min_dwell=40.0, starvation=200.0, switch_cost=0.2, demand=True, job_time=20.0)


def batch(waiting: int = 0, arrived: int = 30, oldest_wait: float = 0.0) -> Backlog:
    return Backlog(waiting, oldest_wait, arrived=arrived, span=600.0)


def test_when_arrivals_stop_an_idle_worker_joins_a_served_backlog():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": batch(), "b": batch(waiting=3)}
    servers, idle = {"a": 1, "b": 1}, {"a": 1, "b": 0}
    assert BATCH.choose(me, backlogs, servers, idle, quiet=59.0) is None, "a stream's lull: stay loaded"
    assert BATCH.choose(me, backlogs, servers, idle, quiet=60.0) == "b", "the batch ended: drain it"
    assert BATCH.choose(me, {**backlogs, "a": batch(waiting=1)}, servers, idle, quiet=600.0) is None, "a has work"


def test_when_arrivals_stop_a_lone_job_with_no_server_waits_for_no_company():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": batch(), "b": batch(waiting=1, oldest_wait=1.0)}
    assert BATCH.choose(me, backlogs, {"a": 1}, {"a": 1}, quiet=10.0) is None, "company may still come"
    assert BATCH.choose(me, backlogs, {"a": 1}, {"a": 1}, quiet=60.0) == "b"


def test_a_drained_backlog_draws_a_worker_only_where_it_ends_sooner_load_included():
    # b jobs on s servers take b/s jobs' time, or a load (1 job here) + b/(s+1) with one more.
    me = WorkerView("a", dwell=100)
    costly = RouterPolicy(min_dwell=40.0, starvation=200.0, switch_cost=1.0, demand=True, job_time=20.0)
    servers, idle = {"a": 1, "b": 2}, {"a": 1, "b": 0}
    assert costly.choose(me, {"a": batch(), "b": batch(waiting=6)}, servers, idle, quiet=60.0) is None
    assert costly.choose(me, {"a": batch(), "b": batch(waiting=7)}, servers, idle, quiet=60.0) == "b"


def test_a_busy_stream_or_an_unknown_rate_never_reads_as_a_batch_end():
    me = WorkerView("a", dwell=100)
    servers, idle = {"a": 1, "b": 1}, {"a": 1, "b": 0}
    fast = {"a": batch(arrived=60_000), "b": batch(waiting=3, arrived=60_000)}  # a gap of 5 ms
    assert BATCH.choose(me, fast, servers, idle, quiet=19.0) is None, "shorter than a job: a lull"
    assert BATCH.choose(me, fast, servers, idle, quiet=20.0) == "b"
    unknown = {"a": Backlog(0), "b": Backlog(3)}
    assert BATCH.choose(me, unknown, servers, idle, quiet=10_000.0) is None
