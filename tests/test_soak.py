"""The bounded soak (bench/soak.py): about 300 jobs through 4 real workers under ROUTER=affinity with
batching and ROUTER=fifo without, with random priorities, bursts, cancels, worker SIGKILLs and a
Redis restart. Every job ends, none completes twice, and no message, lease or index entry is left."""

from __future__ import annotations

import re

from bench import soak


def test_bounded_soak_loses_nothing_and_completes_nothing_twice(capsys):
    status = soak.main(["--jobs", "300", "--workers", "4", "--configs", "quick", "--seed", "3", "--bound", "120"])
    lines = capsys.readouterr().out.strip().splitlines()
    last = re.fullmatch(r"jobs (\d+) ended (\d+) lost (\d+) twice (\d+)", lines[-1])
    assert last, lines[-1]
    jobs, ended, lost, twice = map(int, last.groups())
    assert jobs >= 300 and ended == jobs and lost == 0 and twice == 0, "\n".join(lines)
    assert lines[-2] == "failed without a message 0; leftovers 0", "\n".join(lines)
    assert status == 0
