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


DEMAND = RouterPolicy(min_dwell=2.0, starvation=30.0, job_time=10.0, staffing=1.0, slack=1)


def test_a_share_follows_the_arrival_rate():
    assert DEMAND.share(Backlog(0, rate=0.4)) == 6  # 4 busy on average, and 2 for bursts
    assert DEMAND.share(Backlog(0)) == 0
    assert DEMAND.share(Backlog(1)) == 1  # waiting work keeps a server whatever its rate


def test_by_demand_only_a_mode_above_its_share_gives_a_worker_to_the_furthest_below():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": Backlog(0, rate=0.4), "b": Backlog(0, rate=0.4), "c": Backlog(0, rate=0.9)}
    assert DEMAND.choose(me, backlogs, {"a": 7, "b": 5, "c": 9}) is None, "a is within its slack"
    assert DEMAND.choose(me, backlogs, {"a": 8, "b": 5, "c": 9}) == "c"  # c: 3 of its 12 short; b: 1 of 6
    assert DEMAND.choose(me, backlogs, {"a": 8, "b": 5, "c": 11}) == "b"
    assert DEMAND.choose(me, backlogs, {"a": 8, "b": 6, "c": 12}) is None, "nobody below its share"
    assert DEMAND.choose(me, {**backlogs, "b": Backlog(2, rate=0.4)}, {"a": 6, "b": 6, "c": 9}) is None


def test_by_demand_starvation_still_wins():
    me = WorkerView("a", dwell=100)
    backlogs = {"a": Backlog(0, rate=0.4), "b": Backlog(1, oldest_wait=60.0)}
    assert DEMAND.choose(me, backlogs, {"a": 3}) == "b"
