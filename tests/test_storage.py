"""LocalStore: atomic writes, keys confined to the root, flushed to disk on request."""

from __future__ import annotations

import os

import pytest

from config import Settings
from storage import LocalStore, ObjectNotFound, open_store, store_from


def test_put_get_exists_delete_url(tmp_path):
    store = LocalStore(tmp_path)
    store.put("jobs/a.png", b"\x89PNG data", "image/png")
    assert store.exists("jobs/a.png")
    assert store.get("jobs/a.png") == b"\x89PNG data"
    assert store.url("jobs/a.png") == (tmp_path / "jobs" / "a.png").as_uri()
    store.delete("jobs/a.png")
    assert not store.exists("jobs/a.png")
    with pytest.raises(ObjectNotFound):
        store.get("jobs/a.png")
    store.delete("jobs/a.png")  # deleting twice is fine


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path):
    store = LocalStore(tmp_path)
    store.put("k", b"one", "text/plain")
    store.put("k", b"two", "text/plain")
    assert store.get("k") == b"two"
    assert os.listdir(tmp_path) == ["k"]


def test_failed_write_keeps_the_old_object(tmp_path):
    store = LocalStore(tmp_path)
    store.put("k", b"old", "text/plain")

    with pytest.raises(TypeError):
        store.put("k", object(), "text/plain")  # type: ignore[arg-type]
    assert store.get("k") == b"old"
    assert os.listdir(tmp_path) == ["k"]


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "", "."])
def test_keys_cannot_leave_the_root(tmp_path, key):
    with pytest.raises(ValueError):
        LocalStore(tmp_path).put(key, b"x", "text/plain")


def test_open_store_by_path_or_file_url(tmp_path):
    assert open_store(str(tmp_path)).root == tmp_path
    assert not open_store(str(tmp_path)).fsync and open_store(str(tmp_path), fsync=True).fsync
    assert open_store(tmp_path.as_uri()).root == tmp_path
    with pytest.raises(ValueError, match="unsupported scheme"):
        open_store("ftp://example/x")


def test_objects_are_private_to_the_service_user(tmp_path):
    store = LocalStore(tmp_path / "results")
    store.put("inputs/a.png", b"an uploaded image", "image/png")
    assert (tmp_path / "results").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "results" / "inputs").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "results" / "inputs" / "a.png").stat().st_mode & 0o777 == 0o600


def test_fsync_flushes_the_file_and_every_folder_entry_the_write_made(tmp_path, monkeypatch):
    flushed = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store = LocalStore(tmp_path, fsync=True)
    root = store.root
    store.put("jobs/a/b.png", b"x", "image/png")
    # The data under its temporary name; then the rename's folder, and each folder made by this write in its parent.
    assert flushed[0].startswith(str(root / "jobs" / "a" / ".b.png."))
    assert flushed[1:] == [str(root / "jobs" / "a"), str(root / "jobs"), str(root)]

    flushed.clear()
    store.put("jobs/a/c.png", b"y", "image/png")
    assert flushed[1:] == [str(root / "jobs" / "a")]

    flushed.clear()
    LocalStore(tmp_path).put("jobs/a/d.png", b"z", "image/png")
    assert flushed == []  # the default leaves flushing to the kernel


def test_an_empty_file_reads_as_missing(tmp_path):
    """What a power loss leaves of a write the kernel had not flushed yet."""
    store = LocalStore(tmp_path)
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a.png").write_bytes(b"")
    assert not store.exists("inputs/a.png")
    with pytest.raises(ObjectNotFound):
        store.get("inputs/a.png")
    store.put("inputs/a.png", b"an uploaded image", "image/png")  # an upload of the same content restores it
    assert store.get("inputs/a.png") == b"an uploaded image"
    assert not store.exists("inputs")  # a folder is no object either
    with pytest.raises(ValueError, match="empty"):
        store.put("inputs/b.png", b"", "image/png")


def test_store_fsync_is_read_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STORE_URL", str(tmp_path))
    assert not Settings.from_env().store_fsync
    monkeypatch.setenv("STORE_FSYNC", "1")
    assert Settings.from_env().store_fsync
    store = store_from(Settings.from_env())  # what the API and the workers open
    assert isinstance(store, LocalStore) and store.root == tmp_path and store.fsync
    monkeypatch.setenv("STORE_FSYNC", "always")
    with pytest.raises(SystemExit, match="STORE_FSYNC='always' is not a boolean"):
        Settings.from_env()
