"""A worker host that lacks a mode's files is never routed that mode's jobs (against a real Redis)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from config import Settings
from modes.registry import ModesRegistry
from modes.roots import ModelRoots
from tasks.router import Router
from tests.test_router import enqueue


def write_modes(path: Path, b_model: str, a_model: str = "m") -> None:
    modes = {"a": {"model": a_model, "scheduler": "lcm"}, "b": {"model": b_model, "scheduler": "lcm"}}
    path.write_text(yaml.safe_dump({"modes": modes}))


@pytest.fixture
def client(redis_server):
    return redis_server.client()


@pytest.fixture
def registry(client, tmp_path):
    (tmp_path / "api").mkdir()
    write_modes(tmp_path / "api" / "modes.yaml", "big")
    registry = ModesRegistry(client, tmp_path / "api" / "modes.yaml")
    registry.reload()
    return registry


def host(tmp_path: Path, name: str, models: tuple[str, ...]) -> Path:
    for model in models:
        (tmp_path / name / model).mkdir(parents=True)
    return (tmp_path / name).resolve()


def router(client, registry, name: str, root: Path) -> Router:
    settings = dataclasses.replace(Settings.from_env(), router_min_dwell=0.0)
    roots = ModelRoots(registry.current, root, root)
    return Router(client, registry, "torch", name, settings, roots=roots)


def test_a_backlog_on_a_mode_draws_only_a_host_with_its_files(client, registry, tmp_path):
    small = router(client, registry, "small", host(tmp_path, "small", ("m",)))
    full = router(client, registry, "full", host(tmp_path, "full", ("m", "big")))
    assert small.modes() == ["a", "b"]  # it still sees (and, holding the allocator, publishes) b's backlog
    assert list(small.missing) == ["b"] and "'big' is not under" in small.missing["b"]
    assert full.missing == {}

    small.tick()
    assert small.serving == "a"
    enqueue(client, "b")
    enqueue(client, "b")
    for _ in range(3):
        assert small.tick() is None
    assert small.serving == "a"
    assert full.tick() == "b"


def test_a_worker_whose_mode_loses_its_files_leaves_it(client, registry, tmp_path):
    only = router(client, registry, "only", host(tmp_path, "only", ("m", "big")))
    enqueue(client, "b")
    only.tick()
    assert only.serving == "b"

    write_modes(tmp_path / "api" / "modes.yaml", "bigger")
    registry.reload()
    only.tick()
    assert only.serving == "a"
    assert "'bigger' is not under" in only.missing["b"]

    write_modes(tmp_path / "api" / "modes.yaml", "bigger", a_model="gone")
    registry.reload()
    only.tick()
    assert only.serving is None
    assert only.queues == ["custom"]
