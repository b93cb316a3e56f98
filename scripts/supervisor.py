"""A small process supervisor for `make run`: start Procfile commands, restart the ones that die, stop in order.

Why not honcho, supervisor or circus: honcho stops everything when one process exits and
cannot restart one; supervisord and circus are daemons with their own config files,
control sockets and log files, more machinery than a development stack needs, and
neither stops processes in tiers without more configuration.  This loop does what
`make run` needs and nothing else:

- every program runs in its own session (``sh -c "exec <its Procfile line>"``), so a
  terminal's Ctrl-C reaches only the supervisor, which then stops the programs itself;
- a program that exits is restarted after a backoff (1 s, doubling up to 30 s; back to
  1 s once it has run a minute), with one log line saying how it ended;
- on Ctrl-C or SIGTERM it stops the programs tier by tier, highest first (the API,
  workers and Flower before the broker they talk to), each tier with SIGTERM to each
  program (which stops its own children), then SIGKILL to its whole session after a
  grace period;
- every line a program prints comes out prefixed with its name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE = 60.0  # seconds a program must run before its backoff starts again from FIRST_BACKOFF
GRACE = 15.0  # seconds a tier has to exit after SIGTERM before it is killed
TICK = 0.2


@dataclass
class Program:
    """One command to keep running; lower tiers start first and stop last."""

    name: str
    command: str
    tier: int = 1
    ready_port: int | None = None  # the next tier starts once this port accepts connections
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None


class Supervisor:
    def __init__(self, programs: list[Program], env: dict[str, str], cwd: str, out: IO[str] = sys.stdout) -> None:
        self.programs = sorted(programs, key=lambda p: p.tier)
        self._env = env
        self._cwd = cwd
        self._out = out
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._width = max(len(p.name) for p in programs)

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self._out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self._out.flush()

    def run(self) -> int:
        """Start every program and keep them up until SIGINT or SIGTERM; then stop them in tiers."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        for program in self.programs:
            if self._stop.is_set():
                break
            self._start(program)
            if program.ready_port is not None:
                self._wait_ready(program)
        while not self._stop.wait(TICK):
            for program in self.programs:
                self._watch(program)
        self._shutdown()
        return 0

    def _start(self, program: Program) -> None:
        program.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {program.command}"],
            cwd=self._cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
        )
        program.started_at = time.monotonic()
        program.restart_at = None
        self.say("launcher", f"started {program.name} (pid {program.process.pid})")
        threading.Thread(target=self._relay, args=(program.name, program.process.stdout), daemon=True).start()

    def _relay(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self.say(name, line.rstrip("\n"))

    def _wait_ready(self, program: Program) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._stop.is_set() and program.process.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", program.ready_port)) == 0:
                    return
            time.sleep(0.1)

    def _watch(self, program: Program) -> None:
        """Schedule a restart for a program that exited; restart it when its backoff has passed."""
        now = time.monotonic()
        if program.restart_at is not None:
            if now >= program.restart_at:
                self._start(program)
            return
        code = program.process.poll()
        if code is None:
            return
        if now - program.started_at >= STABLE:
            program.backoff = FIRST_BACKOFF
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        self.say("launcher", f"{program.name} {how}; restarting it in {program.backoff:g} s")
        program.restart_at = now + program.backoff
        program.backoff = min(program.backoff * 2, MAX_BACKOFF)

    def _shutdown(self) -> None:
        for tier in sorted({p.tier for p in self.programs}, reverse=True):
            members = [p for p in self.programs if p.tier == tier and p.process and p.process.poll() is None]
            if not members:
                continue
            self.say("launcher", f"stopping {', '.join(p.name for p in members)}")
            for program in members:
                program.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + GRACE
            for program in members:
                try:
                    program.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.say("launcher", f"{program.name} did not stop within {GRACE:g} s; killing it")
                    _signal_group(program.process, signal.SIGKILL)
                    program.process.wait()
        self.say("launcher", "stopped")


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
