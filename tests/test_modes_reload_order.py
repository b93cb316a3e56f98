"""Reloads that overlap: the newest read of the modes file decides, however late an older one finishes.

An API host reloads from several places at once (each gunicorn worker at start, the file watcher,
SIGHUP, POST /api/modes/reload).  Here one reader is held between reading the file and telling
Redis, as a gunicorn worker still starting is under load, while another reads a newer file.
"""

from __future__ import annotations

import threading

import yaml

from modes.registry import MODES_KEY, ModesRegistry


def write(path, steps: int) -> None:
    """A modes file with one mode; ``steps`` 0 makes it invalid."""
    path.write_text(yaml.safe_dump({"modes": {"a": {"model": "m", "default_steps": steps}}}))


def held(registry: ModesRegistry, monkeypatch) -> tuple[threading.Event, threading.Thread]:
    """Start ``registry.reload`` in a thread that reads the file now and tells Redis once released."""
    read, release = threading.Event(), threading.Event()
    real = registry._read_file

    def read_then_wait():
        try:
            return real()
        finally:
            read.set()
            release.wait(30)

    monkeypatch.setattr(registry, "_read_file", read_then_wait)
    thread = threading.Thread(target=registry.reload, daemon=True)
    thread.start()
    assert read.wait(30)
    return release, thread


def finish(release: threading.Event, thread: threading.Thread) -> None:
    release.set()
    thread.join(30)
    assert not thread.is_alive()


def test_a_slow_reader_of_the_old_file_does_not_republish_it(redis_server, tmp_path, monkeypatch):
    client, modes = redis_server.client(), tmp_path / "modes.yaml"
    write(modes, 4)
    assert ModesRegistry(client, modes).reload().version == 1
    slow = held(ModesRegistry(client, modes), monkeypatch)
    write(modes, 7)
    api = ModesRegistry(client, modes)
    assert api.reload().version == 2

    finish(*slow)
    assert int(client.hget(MODES_KEY, "version")) == 2 and api.current().modes["a"].default_steps == 7
    assert api.status()["error"] is None


def test_a_slow_reader_of_a_broken_file_does_not_mark_a_newer_good_one(redis_server, tmp_path, monkeypatch):
    client, modes = redis_server.client(), tmp_path / "modes.yaml"
    write(modes, 4)
    assert ModesRegistry(client, modes).reload().version == 1
    write(modes, 0)
    slow = held(ModesRegistry(client, modes), monkeypatch)
    write(modes, 7)
    api = ModesRegistry(client, modes)
    assert api.reload().version == 2

    finish(*slow)
    assert api.status()["error"] is None and api.current().modes["a"].default_steps == 7


def test_a_slow_reader_of_the_old_file_does_not_hide_a_newer_refusal(redis_server, tmp_path, monkeypatch):
    client, modes = redis_server.client(), tmp_path / "modes.yaml"
    write(modes, 4)
    assert ModesRegistry(client, modes).reload().version == 1
    slow = held(ModesRegistry(client, modes), monkeypatch)
    write(modes, 0)
    api = ModesRegistry(client, modes)
    assert "default_steps" in api.reload().error

    finish(*slow)
    assert "default_steps" in api.status()["error"]["message"] and api.status()["version"] == 1
