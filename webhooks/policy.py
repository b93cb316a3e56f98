"""Webhook settings, and which destinations a webhook may reach.

A webhook must not be a way into internal services: an address that is private, loopback,
link-local or otherwise not global is refused unless WEBHOOK_ALLOW lists it (a host name, an
address, or a CIDR).  The API checks a URL when the job is submitted (400); the sender checks
again before each request, because a name may resolve elsewhere by then.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class WebhookSettings:
    secret: str
    allow_hosts: frozenset[str]
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    deadline: float  # seconds from a terminal event's first attempt until its retries give up
    retry_base: float  # seconds before the first retry; doubled each time, at most RETRY_CAP
    progress_every: float  # at most one progress webhook per job this often

    @classmethod
    def from_env(cls) -> WebhookSettings:
        hosts, networks = set(), []
        for item in filter(None, (part.strip() for part in os.environ.get("WEBHOOK_ALLOW", "").split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower())
        return cls(
            secret=os.environ.get("WEBHOOK_SECRET", ""),
            allow_hosts=frozenset(hosts),
            allow_networks=tuple(networks),
            deadline=float(os.environ.get("WEBHOOK_DEADLINE") or 3600),
            retry_base=float(os.environ.get("WEBHOOK_RETRY_BASE") or 1),
            progress_every=float(os.environ.get("WEBHOOK_PROGRESS_EVERY") or 1),
        )


RETRY_CAP = 60.0


def _addresses(host: str, port: int | None) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The host's addresses: itself when it is one, else what it resolves to now."""
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def refusal(url: str, settings: WebhookSettings) -> str | None:
    """Why ``url`` may not be called, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"webhook {url!r} is not an http(s) URL with a host"
    host = parts.hostname.lower()
    if host in settings.allow_hosts:
        return None
    try:
        addresses = _addresses(host, parts.port)
    except (OSError, UnicodeError) as exc:
        return f"webhook host {host!r} does not resolve ({exc})"
    for address in addresses:
        if not address.is_global and not any(address in network for network in settings.allow_networks):
            return (
                f"webhook host {host!r} is {address}, a private, loopback or reserved address; "
                "only destinations that WEBHOOK_ALLOW lists may be reached there"
            )
    return None
