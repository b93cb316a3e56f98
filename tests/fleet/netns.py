"""Hosts on one Linux machine: network namespaces on a private subnet, joined by a bridge.

``Network`` makes a namespace holding a bridge (the LAN), and for each host a namespace
whose ``eth0`` is one end of a veth pair, the other end a port of the bridge.  Loopback
stays down in every host, so no process can reach another over 127.0.0.1: they talk over
the subnet, as machines do.  The test process itself gets a port (``client``) so it can
reach every host the way an outside client would.  ``cut``/``restore`` take a host's
port down and up (a partition); ``remove`` deletes everything it made.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=30)


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "the fleet tests make network namespaces, which needs root (CI runs as root)"
    if not Path(IP).exists():
        return "the fleet tests need iproute2's `ip` to make network namespaces"
    probe = f"dlprobe{secrets.token_hex(3)}"
    made = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if made.returncode:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    subprocess.run([IP, "netns", "del", probe], capture_output=True, timeout=30)
    return None


def free_subnet() -> str:
    """A 10.213.N. prefix that no interface of this machine uses."""
    used = subprocess.run([IP, "-o", "addr"], capture_output=True, text=True, timeout=30).stdout
    for _ in range(100):
        prefix = f"10.213.{secrets.randbelow(200) + 20}."
        if prefix not in used:
            return prefix
    raise RuntimeError("no free 10.213.N.0/24 subnet")


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    port: str  # its veth end on the bridge, in the LAN namespace

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host: its network namespace and its own host name."""
        hostname = f'hostname {self.name} && exec "$@"'
        return [IP, "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c", hostname, "sh", *argv]


@dataclass
class Network:
    prefix: str  # "10.213.N."
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def lan(self) -> str:
        return f"dl{self.tag}-lan"

    @property
    def client(self) -> str:
        """The test process's interface on the LAN (in this namespace)."""
        return f"dl{self.tag}c"

    def create(self) -> None:
        _ip("netns", "add", self.lan)
        _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.lan, "link", "set", "br0", "up")
        _ip("link", "add", self.client, "type", "veth", "peer", "name", "client", "netns", self.lan)
        _ip("-n", self.lan, "link", "set", "client", "master", "br0", "up")
        _ip("addr", "add", f"{self.prefix}1/24", "dev", self.client)
        _ip("link", "set", self.client, "up")

    def add_host(self, name: str) -> Host:
        number = len(self.hosts) + 2
        host = Host(name, f"dl{self.tag}-{name}", f"{self.prefix}{number}", f"p{number}")
        _ip("netns", "add", host.namespace)
        _ip(
            "link", "add", host.port, "netns", self.lan, "type", "veth", "peer", "name", "eth0", "netns", host.namespace
        )
        _ip("-n", self.lan, "link", "set", host.port, "master", "br0", "up")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.namespace, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def cut(self, host: Host) -> None:
        """Partition ``host``: its port on the bridge goes down, packets to and from it are lost."""
        _ip("-n", self.lan, "link", "set", host.port, "down")

    def restore(self, host: Host) -> None:
        _ip("-n", self.lan, "link", "set", host.port, "up")

    def remove(self) -> None:
        """Delete every namespace (their veth pairs go with them) and the client interface."""
        subprocess.run([IP, "link", "del", self.client], capture_output=True, timeout=30)
        for host in self.hosts.values():
            subprocess.run([IP, "netns", "del", host.namespace], capture_output=True, timeout=30)
        subprocess.run([IP, "netns", "del", self.lan], capture_output=True, timeout=30)
