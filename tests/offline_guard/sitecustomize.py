"""Tests only: make every attempt to leave this machine fail loudly, in the test process and its children.

Python runs ``sitecustomize`` at start-up when its folder is on PYTHONPATH; the test
stack puts this folder there for every worker and API process, and conftest.py
loads it into pytest itself.  An audit hook refuses name lookups and connections to
anything but loopback addresses and local sockets, so a code path that tries a
model hub fails the test instead of quietly downloading.  The fleet tests add their
own private subnet, which they create and remove (``OFFLINE_GUARD_ALLOW``: address
prefixes, comma-separated).
"""

import os
import sys

LOCAL_HOSTS = ("127.", "::1", "localhost", "0.0.0.0")


class NetworkAccessError(RuntimeError):
    """Something tried to reach a host that is not this machine."""


def _host(event: str, args: tuple) -> str | None:
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return None
    return host.decode() if isinstance(host, bytes) else host


def _refuse_remote(event: str, args: tuple) -> None:
    # The hook sees every audited event (redis-py reading a function's __code__ on each command
    # is one): leave all but the two it checks at the first comparison.
    if event != "socket.connect" and event != "socket.getaddrinfo":
        return
    host = _host(event, args)
    allowed = tuple(p for p in os.environ.get("OFFLINE_GUARD_ALLOW", "").split(",") if p)
    if host is not None and not str(host).startswith(LOCAL_HOSTS + allowed):
        raise NetworkAccessError(f"tests run offline: {event} to {host!r} refused")


sys.addaudithook(_refuse_remote)
