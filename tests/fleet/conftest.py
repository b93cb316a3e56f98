"""The fleet: five hosts in network namespaces, built once per test module and removed after it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fleet.harness import REDIS_SERVER, Fleet, model_root, write_modes
from tests.fleet.netns import Network, free_subnet, unavailable

WHY_NOT = unavailable() or (None if Path(REDIS_SERVER).exists() else f"no {REDIS_SERVER} (Debian's, with TLS)")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, tiny_model, tiny_loras):
    """Redis (TLS, ACL users), the S3 store, the API, and the gpu and npu worker hosts, each worker
    with its models in a folder of its own; gpu alone has the gpu-only mode's model."""
    if WHY_NOT:
        pytest.skip(WHY_NOT)
    workdir = tmp_path_factory.mktemp("fleet")
    (workdir / "logs").mkdir()
    net = Network(free_subnet())
    fleet = Fleet(net, workdir)
    allowed = os.environ.get("OFFLINE_GUARD_ALLOW")
    os.environ["OFFLINE_GUARD_ALLOW"] = net.prefix  # the test process reaches the hosts through its client port
    net.create()
    try:
        for name in ("redis", "store", "api", "gpu", "npu", "extra"):
            fleet.hosts[name] = net.add_host(name)
        fleet.start_redis()
        fleet.start_store()
        fleet.start_api(write_modes(workdir / "api" / "modes.yaml"))
        fleet.roots = {
            "gpu": model_root(workdir / "gpu" / "models", extra=("tiny-sd15-gpu",)),
            "npu": model_root(workdir / "npu" / "srv" / "stable-diffusion"),
        }
        for host in ("gpu", "npu"):
            fleet.start_worker(host, fleet.worker_env(fleet.roots[host]))
        yield fleet
    finally:
        fleet.stop_all()
        net.remove()
        if allowed is None:
            os.environ.pop("OFFLINE_GUARD_ALLOW", None)
        else:
            os.environ["OFFLINE_GUARD_ALLOW"] = allowed
