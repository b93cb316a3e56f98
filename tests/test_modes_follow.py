"""One modes config for the fleet: the API host publishes it; a worker follows and never overwrites it."""

from __future__ import annotations

import logging
import threading

import yaml

from modes.registry import MODES_KEY, ModesRegistry


def write(path, steps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"modes": {"a": {"model": "m", "default_steps": steps}}}))


def published(client) -> tuple[int, str]:
    version, digest = client.hmget(MODES_KEY, "version", "digest")
    return int(version), digest.decode()


def test_a_worker_with_a_stale_file_follows_the_fleets_config(redis_server, tmp_path, caplog):
    client = redis_server.client()
    write(tmp_path / "api" / "modes.yaml", 4)
    write(tmp_path / "worker" / "modes.yaml", 9)
    api = ModesRegistry(client, tmp_path / "api" / "modes.yaml")
    assert api.reload().version == 1
    before = published(client)

    with caplog.at_level(logging.WARNING, logger="modes.registry"):
        config = ModesRegistry(client, tmp_path / "worker" / "modes.yaml").follow()

    assert config.modes["a"].default_steps == 4
    assert published(client) == before
    assert "differs from the fleet's modes config (version 1): the fleet's is used" in caplog.text


def test_a_worker_without_a_file_waits_for_the_api_hosts_config(redis_server, tmp_path):
    client = redis_server.client()
    worker = ModesRegistry(client, tmp_path / "worker" / "absent.yaml", env={})
    followed = []
    thread = threading.Thread(target=lambda: followed.append(worker.follow(poll=0.05)), daemon=True)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and not client.exists(MODES_KEY), "the worker published or failed without a config"

    write(tmp_path / "api" / "modes.yaml", 4)
    ModesRegistry(client, tmp_path / "api" / "modes.yaml").reload()
    thread.join(30)
    assert followed and followed[0].modes["a"].default_steps == 4


def test_a_worker_seeds_only_an_empty_redis_and_the_api_host_then_wins(redis_server, tmp_path):
    """One host without an API (the original layout's tests) still runs from its own file."""
    client = redis_server.client()
    write(tmp_path / "worker" / "modes.yaml", 9)
    assert ModesRegistry(client, tmp_path / "worker" / "modes.yaml").follow().modes["a"].default_steps == 9
    assert published(client)[0] == 1

    write(tmp_path / "api" / "modes.yaml", 4)
    assert ModesRegistry(client, tmp_path / "api" / "modes.yaml").reload().version == 2
    again = ModesRegistry(client, tmp_path / "worker" / "modes.yaml").follow()
    assert again.modes["a"].default_steps == 4
    assert published(client)[0] == 2
