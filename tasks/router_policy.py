"""The mode-affinity policy: which mode a worker should serve next.

Pure (no Redis, no clock), so the worker's router (tasks/router.py) and the fleet
simulation (bench/router_sim.py) run the same decisions.  Loading a mode costs
seconds to tens of seconds, so a worker stays on its mode while that mode has work,
and moves only:

- when its own queue is empty: to a waiting mode with no server, once its waiting work
  would keep the worker busy through a dwell or its oldest job has waited a dwell (a
  lone short job waits a moment for company rather than cost a load by itself); else
  (if its own mode keeps an idle server, or has no other server) to one whose waiting
  jobs beyond its idle servers (which take them at once) outweigh a switch per server
  (more than ``switch_cost`` jobs each: the last of them would wait longer than a load
  takes) and keep every server, the newcomer too, busy through a dwell; among those,
  to the one under the most pressure (waiting jobs and the age of the oldest, per server);
- when a mode's waiting work has had no server for ``starvation`` seconds (by the
  oldest job's age, or by how long the router has seen it so), even from a busy
  queue: this bounds every job's wait (no starvation);
- never within ``min_dwell`` seconds of its last move (no thrashing), nor while a
  switch job pins it to its mode.

With ``demand`` set (allocation by demand), a mode's share of servers follows its
arrival rate: ``rate x job_time`` servers busy on average plus, for Poisson bursts,
spare servers in proportion to the square root of that (square-root staffing), the
fleet's spare servers spread so that the shares add up to the fleet (at most
``staffing`` per root).  A rate is an estimate (``arrived`` jobs over ``span``
seconds), so a worker whose queue is empty leaves its mode only if the mode has more
servers than its share at the rate's upper bound (``leave_confidence`` standard errors
above the estimate), and only for a mode below its share at the lower bound
(``confidence`` below): noise then moves almost nobody, and while a rate is young (a
start, a new allocator) its bounds are wide and workers stay where they are until the
evidence says where they are needed.  A mode whose rate or job time is not known yet
has no share: nobody leaves or joins it by demand.  A waiting mode with no server, and
starvation, still come first; with no rate known at all the backlog rules above apply.

When arrivals have stopped (the end of a batch: the backend has admitted nothing for
``quiet_gaps`` mean gaps between its arrivals, and for at least its longest job) the
fleet drains what is left as fast as it can: no later arrival will repay a worker kept
idle to save a load.  A worker whose queue is empty then takes a waiting mode with no
server at once (no company is coming), or joins a served mode whose waiting jobs drain
sooner with it, the load included.  A steady stream falls silent that long once in about
e**quiet_gaps arrivals (about 400); the run-time floor keeps a busy fleet, whose gaps are
milliseconds, from draining mid-stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backlog:
    """A mode's waiting jobs: how many, how long the oldest has waited, and how long the mode
    has been seen with waiting work and no server (seconds; a job redelivered after its
    worker died has no submit age, so the router watches this too); and, for allocation
    by demand, the jobs admitted over the last ``span`` seconds and a job's mean run time."""

    waiting: int
    oldest_wait: float = 0.0
    unserved_for: float = 0.0
    arrived: int = 0
    span: float = 0.0  # 0: arrivals not counted (yet)
    job_time: float = 0.0  # seconds, measured; 0: the policy's ``job_time``

    def starving(self, servers: int, starvation: float) -> bool:
        return self.waiting > 0 and servers == 0 and max(self.oldest_wait, self.unserved_for) >= starvation

    def rate(self, confidence: float = 0.0) -> float:
        """Arrivals a second, ``confidence`` standard errors above (below, if negative) the estimate.

        Wilson-like bounds for a Poisson count: with no arrivals the upper one is still
        ``confidence**2 / span``, so a mode counted only briefly is not judged idle."""
        spread = confidence * math.sqrt(self.arrived + confidence * confidence / 4)
        return max(0.0, self.arrived + confidence * confidence / 2 + spread) / self.span


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
    demand: bool = False  # allocate by demand where arrivals are counted
    job_time: float = 0.0  # seconds a job runs, where the backlog has not measured it (0: unknown)
    staffing: float = 1.5  # at most this many spare servers per square root of a mode's busy ones
    confidence: float = 2.0  # standard errors below its rate a mode must be short to draw a worker
    leave_confidence: float = 1.25  # ... and above its rate a mode must be over for a worker to leave it
    quiet_gaps: float = 6.0  # mean gaps between the backend's arrivals without one that end a batch

    def run_time(self, backlog: Backlog) -> float:
        """Seconds a job of the mode runs: measured, else the policy's ``job_time`` (0: unknown)."""
        return backlog.job_time or self.job_time

    def busy(self, backlog: Backlog, confidence: float = 0.0) -> float | None:
        """Servers the mode keeps busy on average by its arrival rate (at a bound, with ``confidence``);
        None when its rate or its jobs' run time is not known yet."""
        job_time = self.run_time(backlog)
        if backlog.span <= 0 or not job_time:
            return None
        return backlog.rate(confidence) * job_time

    def spare(self, backlogs: Mapping[str, Backlog], servers: Mapping[str, int]) -> float:
        """Spare servers per square root of busy ones when the servers of the modes with a known
        demand are spread by it (square-root staffing), at most ``staffing``."""
        known = {m: self.busy(b) for m, b in backlogs.items()}
        known = {m: busy for m, busy in known.items() if busy is not None}
        roots = sum(math.sqrt(busy) for busy in known.values())
        if not roots:
            return self.staffing
        workers = sum(servers.get(m, 0) for m in known)
        return min(self.staffing, max(0.0, (workers - sum(known.values())) / roots))

    def share(self, backlog: Backlog, spare: float | None = None, confidence: float = 0.0) -> float:
        """The servers a mode should have (a whole number) by its arrival rate at ``confidence``
        standard errors from the estimate, ``spare`` (default ``staffing``) per root of its busy ones,
        at least one while work waits; unknown demand: infinite above the estimate, else none."""
        busy = self.busy(backlog, confidence)
        if busy is None:
            return math.inf if confidence > 0 else 0
        spare = self.staffing if spare is None else spare
        return max(math.ceil(busy + spare * math.sqrt(busy)), 1 if backlog.waiting else 0)

    def pressure(self, backlog: Backlog, servers: int) -> float:
        """How underserved a mode is: its waiting work per server it would have with one more."""
        return (backlog.waiting + backlog.oldest_wait / self.age_unit) / (servers + 1)

    def choose(
        self,
        me: WorkerView,
        backlogs: Mapping[str, Backlog],
        servers: Mapping[str, int],
        idle: Mapping[str, int] | None = None,
        quiet: float = 0.0,
    ) -> str | None:
        """The mode ``me`` should serve next, or None to stay where it is.

        ``backlogs`` has every mode the worker may serve; ``servers`` counts the live
        workers serving each mode, ``me`` included, and ``idle`` those of them without a
        job (unknown: every server counts as idle); ``quiet`` is how many seconds the
        backend has admitted no job (0: unknown).
        """
        if me.serving not in backlogs:
            return self._first(me, backlogs, servers, idle)
        if me.pinned or me.dwell < self.min_dwell:
            return None
        starving = [m for m, b in backlogs.items() if b.starving(servers.get(m, 0), self.starvation)]
        if starving:
            return max(starving, key=lambda m: (backlogs[m].oldest_wait, m))
        if backlogs[me.serving].waiting:
            return None
        if self.stopped(backlogs, quiet):
            return self._drain(me, backlogs, servers, idle or {})
        # Leaving a mode that keeps an idle server, or that has no other server (its next
        # job then pulls a worker as any unserved work does), does not starve it.
        idle_here = (servers if idle is None else idle).get(me.serving, 0)
        spare = idle_here > 1 or servers.get(me.serving, 0) <= 1
        if self.demand and any(self.busy(b) is not None for b in backlogs.values()):
            unserved = self._most_underserved(me, backlogs, servers, idle, spare=False)
            if unserved is not None and spare:
                return unserved
            return self._by_demand(me, backlogs, servers)
        return self._most_underserved(me, backlogs, servers, idle, spare)

    def stopped(self, backlogs: Mapping[str, Backlog], quiet: float) -> bool:
        """Whether arrivals have stopped: ``quiet`` seconds without one is both ``quiet_gaps`` mean gaps of the
        backend's counted arrival rate and at least its modes' longest mean run time (unknown: not stopped)."""
        counted = [b for b in backlogs.values() if b.span > 0]
        rate = sum(b.rate() for b in counted)
        job_time = max((self.run_time(b) for b in backlogs.values()), default=0.0)
        return bool(counted) and rate > 0 and job_time > 0 and quiet >= max(self.quiet_gaps / rate, job_time)

    def _drain(
        self, me: WorkerView, backlogs: Mapping[str, Backlog], servers: Mapping[str, int], idle: Mapping[str, int]
    ) -> str | None:
        """With arrivals stopped: a waiting mode with no server, else the served mode with the most waiting jobs
        per server beyond its idle ones, where they finish sooner with me: ``b`` such jobs on ``s`` servers take
        ``b / s`` jobs' time, and ``switch_cost + b / (s + 1)`` with me: I join where
        ``b > switch_cost * s * (s + 1)``."""
        unserved = [m for m, b in backlogs.items() if m != me.serving and b.waiting and not servers.get(m)]
        if unserved:
            return max(unserved, key=lambda m: (self.pressure(backlogs[m], 0), m in me.cached, m))
        gains = {}
        for mode, backlog in backlogs.items():
            count = servers.get(mode, 0)
            beyond = backlog.waiting - idle.get(mode, 0)
            if mode != me.serving and count and beyond > self.switch_cost * count * (count + 1):
                gains[mode] = beyond / count
        return max(gains, key=lambda m: (gains[m], m in me.cached, m)) if gains else None

    def _by_demand(self, me: WorkerView, backlogs: Mapping[str, Backlog], servers: Mapping[str, int]) -> str | None:
        """Leave a mode surely above its share for the one furthest surely below its share, waiting work first."""
        spare = self.spare(backlogs, servers)
        if servers.get(me.serving, 0) <= self.share(backlogs[me.serving], spare, self.leave_confidence):
            return None
        low = {m: self.share(b, spare, -self.confidence) for m, b in backlogs.items() if m != me.serving}
        candidates = [m for m, share in low.items() if servers.get(m, 0) < share]
        if not candidates:
            return None
        return max(
            candidates,
            key=lambda m: (backlogs[m].waiting > 0, 1 - servers.get(m, 0) / low[m], m in me.cached, m),
        )

    def _most_underserved(
        self,
        me: WorkerView,
        backlogs: Mapping[str, Backlog],
        servers: Mapping[str, int],
        idle: Mapping[str, int] | None = None,
        spare: bool = True,
    ) -> str | None:
        """A mode whose waiting work is worth a move: unserved, or (``spare``: my mode can do without me)
        served but with waiting jobs beyond its idle servers (they take them at once) that outweigh a
        switch per server; either way work that keeps me busy through the dwell a move binds me to."""
        idle = idle or {}
        candidates = [
            m
            for m, b in backlogs.items()
            if m != me.serving
            and b.waiting
            and (
                self._unserved_worth(b)
                if not servers.get(m)
                else spare and self._served_worth(b, servers[m], idle.get(m, 0))
            )
        ]
        if not candidates:
            return None
        # A mode nobody serves makes no progress at all: it goes before a busy served one.
        return max(
            candidates,
            key=lambda m: (not servers.get(m), self.pressure(backlogs[m], servers.get(m, 0)), m in me.cached, m),
        )

    def _unserved_worth(self, backlog: Backlog) -> bool:
        """Waiting work with no server draws a worker once it fills the dwell a move binds it to, or its oldest
        job has waited that long: a lone short job waits a moment for company (or for the worker's own next
        job) rather than cost a load each (run time unknown: at once)."""
        job_time = self.run_time(backlog)
        waited = max(backlog.oldest_wait, backlog.unserved_for)
        return not job_time or backlog.waiting * job_time >= self.min_dwell or waited >= self.min_dwell

    def _served_worth(self, backlog: Backlog, servers: int, idle: int) -> bool:
        """A served mode draws one more worker when its waiting jobs beyond its idle servers outweigh a
        switch per server and keep every server, the newcomer too, busy through a dwell."""
        beyond = backlog.waiting - idle
        job_time = self.run_time(backlog)
        dwell_filled = not job_time or beyond * job_time >= self.min_dwell * (servers + 1)
        return beyond > self.switch_cost * servers and dwell_filled

    def _first(
        self,
        me: WorkerView,
        backlogs: Mapping[str, Backlog],
        servers: Mapping[str, int],
        idle: Mapping[str, int] | None = None,
    ) -> str | None:
        """A worker without a mode (new, or its mode was removed) takes the most underserved one;
        with no work anywhere, the mode with the fewest servers, so idle workers spread out."""
        if not backlogs:
            return None
        busy = self._most_underserved(me, backlogs, servers, idle)
        if busy is not None:
            return busy
        return min(backlogs, key=lambda m: (servers.get(m, 0), m not in me.cached, list(backlogs).index(m)))
