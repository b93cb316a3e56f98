"""The mode-affinity policy: which mode a worker should serve next.

Pure (no Redis, no clock), so the worker's router (tasks/router.py) and the fleet
simulation (bench/router_sim.py) run the same decisions.  Loading a mode costs
seconds to tens of seconds, so a worker stays on its mode while that mode has work,
and moves only:

- when its own queue is empty: to a waiting mode with no server, else (if its own
  mode keeps an idle server, or has no other server) to one whose waiting jobs per
  server outweigh a switch (more than ``switch_cost`` jobs each: the last of them
  would wait longer than a load takes); among those, to the one under the most
  pressure (waiting jobs and the age of the oldest, per server);
- when a mode's waiting work has had no server for ``starvation`` seconds (by the
  oldest job's age, or by how long the router has seen it so), even from a busy
  queue: this bounds every job's wait (no starvation);
- never within ``min_dwell`` seconds of its last move (no thrashing), nor while a
  switch job pins it to its mode.

With ``job_time`` set (allocation by demand), a mode's share of servers follows its
arrival rate: ``rate x job_time`` servers busy on average, plus ``staffing`` times the
square root of that for Poisson bursts.  A worker whose queue is empty leaves only a
mode more than ``slack`` above its share, for the mode furthest below its share;
starvation still wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backlog:
    """A mode's waiting jobs: how many, how long the oldest has waited, and how long the mode
    has been seen with waiting work and no server (seconds; a job redelivered after its
    worker died has no submit age, so the router watches this too)."""

    waiting: int
    oldest_wait: float = 0.0
    unserved_for: float = 0.0
    rate: float = 0.0  # jobs a second arriving, when counted (allocation by demand)

    def starving(self, servers: int, starvation: float) -> bool:
        return self.waiting > 0 and servers == 0 and max(self.oldest_wait, self.unserved_for) >= starvation


@dataclass(frozen=True)
class WorkerView:
    """What the policy knows of the worker it decides for."""

    serving: str | None
    dwell: float = float("inf")  # seconds since it began serving that mode
    pinned: bool = False
    cached: frozenset[str] = field(default_factory=frozenset)  # modes it can load from host RAM


@dataclass(frozen=True)
class RouterPolicy:
    min_dwell: float = 2.0
    starvation: float = 30.0
    switch_cost: float = 1.0  # a mode load, in jobs' run time
    age_unit: float = 10.0  # seconds of the oldest job's wait that weigh as much as one more waiting job
    job_time: float = 0.0  # seconds a job runs; 0: no allocation by demand
    staffing: float = 1.5  # spare servers per square root of a mode's busy ones
    slack: int = 2  # servers above its share a mode keeps before one leaves (rates are estimates)

    def share(self, backlog: Backlog) -> int:
        """The servers a mode should have by its arrival rate (at least one while work waits)."""
        busy = backlog.rate * self.job_time
        return max(math.ceil(busy + self.staffing * math.sqrt(busy)), 1 if backlog.waiting else 0)

    def pressure(self, backlog: Backlog, servers: int) -> float:
        """How underserved a mode is: its waiting work per server it would have with one more."""
        return (backlog.waiting + backlog.oldest_wait / self.age_unit) / (servers + 1)

    def choose(
        self,
        me: WorkerView,
        backlogs: Mapping[str, Backlog],
        servers: Mapping[str, int],
        idle: Mapping[str, int] | None = None,
    ) -> str | None:
        """The mode ``me`` should serve next, or None to stay where it is.

        ``backlogs`` has every mode the worker may serve; ``servers`` counts the live
        workers serving each mode, ``me`` included, and ``idle`` those of them without a
        job (unknown: every server counts as idle).
        """
        if me.serving not in backlogs:
            return self._first(me, backlogs, servers)
        if me.pinned or me.dwell < self.min_dwell:
            return None
        starving = [m for m, b in backlogs.items() if b.starving(servers.get(m, 0), self.starvation)]
        if starving:
            return max(starving, key=lambda m: (backlogs[m].oldest_wait, m))
        if backlogs[me.serving].waiting:
            return None
        if self.job_time:
            return self._by_demand(me, backlogs, servers)
        # Leaving a mode that keeps an idle server, or that has no other server (its next
        # job then pulls a worker as any unserved work does), does not starve it.
        idle_here = (servers if idle is None else idle).get(me.serving, 0)
        spare = idle_here > 1 or servers.get(me.serving, 0) <= 1
        return self._most_underserved(me, backlogs, servers, spare)

    def _by_demand(self, me: WorkerView, backlogs: Mapping[str, Backlog], servers: Mapping[str, int]) -> str | None:
        """Leave a mode above its share for the one furthest below its share, waiting work first."""
        if servers.get(me.serving, 0) <= self.share(backlogs[me.serving]) + self.slack:
            return None
        short = {m: self.share(b) - servers.get(m, 0) for m, b in backlogs.items() if m != me.serving}
        candidates = [m for m, gap in short.items() if gap > 0]
        if not candidates:
            return None
        return max(
            candidates,
            key=lambda m: (backlogs[m].waiting > 0, short[m] / self.share(backlogs[m]), m in me.cached, m),
        )

    def _most_underserved(
        self, me: WorkerView, backlogs: Mapping[str, Backlog], servers: Mapping[str, int], spare: bool = True
    ) -> str | None:
        """``spare``: my mode can do without me, so I may join a mode that has servers too."""
        candidates = [
            m
            for m, b in backlogs.items()
            if m != me.serving
            and b.waiting
            and (not servers.get(m) or (spare and b.waiting > self.switch_cost * servers[m]))
        ]
        if not candidates:
            return None
        # A mode nobody serves makes no progress at all: it goes before a busy served one.
        return max(
            candidates,
            key=lambda m: (not servers.get(m), self.pressure(backlogs[m], servers.get(m, 0)), m in me.cached, m),
        )

    def _first(self, me: WorkerView, backlogs: Mapping[str, Backlog], servers: Mapping[str, int]) -> str | None:
        """A worker without a mode (new, or its mode was removed) takes the most underserved one;
        with no work anywhere, the mode with the fewest servers, so idle workers spread out."""
        if not backlogs:
            return None
        busy = self._most_underserved(me, backlogs, servers)
        if busy is not None:
            return busy
        return min(backlogs, key=lambda m: (servers.get(m, 0), m not in me.cached, list(backlogs).index(m)))
