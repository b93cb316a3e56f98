"""The allocator's arrival counts: rates over the readings it kept, from the API's counters."""

from __future__ import annotations

from tasks.arrivals import Arrivals, job_times


def test_arrivals_are_counted_since_the_oldest_reading_kept_within_the_window():
    arrivals = Arrivals(window=60.0)
    assert arrivals.add(100.0, ["a", "b"], [b"5", None]) == {"a": (0, 0.0), "b": (0, 0.0)}, "not known yet"
    assert arrivals.add(110.0, ["a", "b"], [b"9", b"1"]) == {"a": (4, 10.0), "b": (1, 10.0)}
    for at in range(115, 200, 5):
        counted = arrivals.add(float(at), ["a", "b"], [str(9 + at - 110).encode(), b"1"])
    assert counted == {"a": (60, 60.0), "b": (0, 60.0)}, "the last 60 s only: a job a second, none on b"


def test_a_mode_new_to_the_readings_and_counters_that_went_back_start_afresh():
    arrivals = Arrivals(window=60.0)
    arrivals.add(0.0, ["a"], [b"7"])
    assert arrivals.add(10.0, ["a", "b"], [b"8", b"3"]) == {"a": (1, 10.0), "b": (0, 0.0)}
    assert arrivals.add(20.0, ["a", "b"], [b"2", b"3"]) == {"a": (0, 0.0), "b": (0, 0.0)}, "Redis lost them"


def test_the_last_arrival_is_the_first_reading_whose_counts_rose():
    arrivals = Arrivals(window=60.0)
    arrivals.add(100.0, ["a", "b"], [b"5", None])
    assert arrivals.last_arrival == 100.0, "nothing seen arrive yet: quiet since the first reading"
    arrivals.add(110.0, ["a", "b"], [b"5", None])
    assert arrivals.last_arrival == 100.0
    arrivals.add(120.0, ["a", "b"], [b"5", b"1"])
    arrivals.add(130.0, ["a", "b", "c"], [b"5", b"1", b"4"])
    assert arrivals.last_arrival == 120.0, "a mode new to the readings is not an arrival"
    arrivals.add(140.0, ["a", "b", "c"], [b"2", b"1", b"4"])
    assert arrivals.last_arrival == 120.0, "counters that went back (Redis lost them) are not arrivals"


def test_a_job_time_is_the_mean_run_time_measured():
    assert job_times(["a", "b"], [b"12.5", b"5", None, None]) == {"a": 2.5, "b": 0.0}
