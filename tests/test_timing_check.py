"""The check `make lint` runs: an assertion that orders a wall-clock timing is found, others are not."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from scripts.check_no_timing_asserts import check, timing_asserts
from tests.processes import ROOT

FLAGGED = {
    "clock call": "def test():\n    began = 0\n    assert time.monotonic() - began < 5",
    "assigned from a clock": "def test():\n    began = time.perf_counter()\n    took = time.perf_counter() - began\n"
    "    assert took <= 2.0",
    "seconds name": "def test():\n    assert run_seconds > 3 * 2",
    "seconds key": "def test(record):\n    assert record['result']['load_seconds'] >= 0",
    "seconds attribute": "def test(job):\n    assert 0.1 < job.elapsed",
    "inside a bool op": "def test(ok, wall_seconds):\n    assert ok and wall_seconds < 10, 'slow'",
    "module level": "assert time.time() > 0",
}
NOT_FLAGGED = {
    "a count": "def test(n):\n    assert n > 3",
    "equality on a duration field's type": "def test(r):\n    assert isinstance(r['load_seconds'], float)",
    "a deadline in a wait": "def test():\n    wait_for(lambda: True, 120, 'x')\n    assert done",
    "a clock used for a deadline only": "def test():\n    deadline = time.monotonic() + 5\n    assert ready()",
    "a timeout setting compared for equality": "def test(s):\n    assert s.lease_seconds == 30",
}


def flagged(source: str) -> bool:
    return any(True for _ in timing_asserts(ast.parse(textwrap.dedent(source))))


@pytest.mark.parametrize("case", sorted(FLAGGED))
def test_timing_assertions_are_found(case):
    assert flagged(FLAGGED[case])


@pytest.mark.parametrize("case", sorted(NOT_FLAGGED))
def test_other_assertions_are_not(case):
    assert not flagged(NOT_FLAGGED[case])


def test_the_suite_asserts_on_no_timing(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert check([Path("tests")]) == []
