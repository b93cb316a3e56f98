"""The API refuses to listen beyond loopback without keys, unless ``AUTH=off`` is said outright.

``make run`` binds 127.0.0.1 with AUTH unset, which means off: fine for a first try on one's own
machine. Bound to any other address, AUTH unset would hand every job, prompt and mode switch to
whoever reaches the port, so the API does not start; ``AUTH=off`` set explicitly starts it with a
warning, ``AUTH=keys`` without one. gunicorn.conf.py calls :func:`check` before binding.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

LOOPBACK_NAMES = {"localhost"}


def exposed(binds: Iterable[str]) -> list[str]:
    """The addresses of gunicorn ``bind`` values that reach beyond this machine (unix sockets do not)."""
    return [bind for bind in binds if not bind.startswith(("unix:", "fd://")) and not _is_loopback(_host(bind))]


def check(binds: Iterable[str], env: Mapping[str, str]) -> str | None:
    """Raise SystemExit when the API would serve exposed binds with AUTH unset; return a warning
    when it would with AUTH=off said outright; None when keys are on or nothing is exposed."""
    outside = exposed(binds)
    auth = env.get("AUTH", "").strip().lower()
    if not outside or auth == "keys":
        return None
    where = ", ".join(outside)
    if not auth:
        raise SystemExit(
            f"refusing to serve the API on {where} without API keys: set AUTH=keys and create a key "
            "(python -m api.keys create --role admin --name NAME), or set AUTH=off explicitly to "
            "serve it open to everyone who reaches that address"
        )
    return f"AUTH=off on {where}: anyone who reaches it can submit, read and cancel every job"


def _host(bind: str) -> str:
    if bind.startswith("["):
        return bind[1 : bind.index("]")]
    host, _, _port = bind.rpartition(":")
    return host or bind


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
