"""One modes config for the whole fleet, hot-reloaded through Redis.

The API host owns the modes file: its processes load it (at start, on a file change,
on SIGHUP, or on ``POST /api/modes/reload``) with ``reload``.  A valid file whose
content differs from what Redis holds is published there under a new version; a
broken one is never published: the last good config keeps serving and the error is
kept beside it for ``GET /api/modes``.  A worker only ``follow``s: it needs no modes
file, and its own file (a stale copy on a worker host, say) can never replace the
fleet's config; it is published only into a Redis that holds none yet, so one host
runs without an API.  Every process compares its version with Redis' before it uses
the config (one HGET) and re-parses the published text when it moved, so all API
processes and workers serve the same version.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from modes.config import ModesConfig, ModesError, load_modes, parse_modes
from modes.legacy import legacy_modes

log = logging.getLogger(__name__)

MODES_KEY = "dl:modes"

# Every reload takes a ticket (HINCRBY 'reads') before it reads the file, and the outcome of the
# newest read stands: 'decided' holds the ticket of the read that last published or refused.  A
# slower reader of an older file (a gunicorn worker still starting, a SIGHUP thread) arrives with an
# older ticket and changes nothing: it can neither republish the old text as a new version nor set or
# clear an error that a newer read decided.  Tickets, not clocks: they order reads across processes.
# ARGV[5]: the publisher's ticket.  Returns {version, 1 when published (or confirmed) else 0}.
_PUBLISH = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[5]) < tonumber(redis.call('HGET', KEYS[1], 'decided') or '0') then
  return {version, 0}
end
redis.call('HSET', KEYS[1], 'decided', ARGV[5])
redis.call('HDEL', KEYS[1], 'error', 'error_at')
if redis.call('HGET', KEYS[1], 'digest') == ARGV[1] then
  return {version, 1}
end
version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'digest', ARGV[1], 'text', ARGV[2], 'source', ARGV[3], 'published_at', ARGV[4])
return {version, 1}
"""

# A refused file's error, unless a newer read already decided (ARGV[3]: the refusing read's ticket).
_REFUSE = """
if tonumber(ARGV[3]) < tonumber(redis.call('HGET', KEYS[1], 'decided') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'error', ARGV[1], 'error_at', ARGV[2], 'decided', ARGV[3])
return 1
"""


# A worker's file, published only when Redis holds no config at all; 0 when it holds one.
_SEED = """
if redis.call('HEXISTS', KEYS[1], 'version') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'version', 1, 'digest', ARGV[1], 'text', ARGV[2], 'source', ARGV[3])
redis.call('HSET', KEYS[1], 'published_at', ARGV[4])
return 1
"""


@dataclass(frozen=True)
class ReloadResult:
    version: int
    error: str | None


class ModesRegistry:
    def __init__(self, client: redis.Redis, path: Path, env: Mapping[str, str] | None = None) -> None:
        self._redis = client
        self._path = Path(path)
        self._env = os.environ if env is None else env
        self._publish = client.register_script(_PUBLISH)
        self._seed = client.register_script(_SEED)
        self._refuse = client.register_script(_REFUSE)
        self._lock = threading.Lock()
        self._config: ModesConfig | None = None
        self._version = 0

    def _read_file(self) -> ModesConfig:
        if not self._path.exists():
            legacy = legacy_modes(self._env, self._path)
            if legacy is not None:
                return legacy
        return load_modes(self._path)

    def reload(self) -> ReloadResult:
        """Load the modes file; publish it if valid and new; keep the last good one if not."""
        ticket = self._redis.hincrby(MODES_KEY, "reads", 1)
        try:
            config = self._read_file()
        except ModesError as exc:
            log.error("modes config not reloaded, the last good one keeps serving: %s", exc)
            self._refuse(keys=[MODES_KEY], args=[str(exc), time.time(), ticket])
            self._sync()
            return ReloadResult(self._version, str(exc))
        args = [config.digest, config.text, str(config.source), time.time(), ticket]
        version, published = self._publish(keys=[MODES_KEY], args=args)
        if not published:
            log.info("modes config read superseded by a newer reload; version %s stands", version)
            self._sync()
            return ReloadResult(self._version, None)
        with self._lock:
            if version != self._version:
                log.info("modes config version %s: %s", version, ", ".join(config.modes))
            self._config, self._version = config, version
        return ReloadResult(version, None)

    def follow(self, poll: float = 1.0) -> ModesConfig:
        """A worker's start: the fleet's config from Redis, waiting for the API host to publish one when
        there is none and this host's modes file cannot seed it.  Never overwrites a published config."""
        waiting = False
        while True:
            self._sync()
            if self._config is not None:
                self._warn_if_stale()
                return self._config
            if self._seed_from_file():
                continue
            if not waiting:
                log.info("waiting for the fleet's modes config in Redis (the API host publishes it)")
                waiting = True
            time.sleep(poll)

    def _seed_from_file(self) -> bool:
        """Publish this host's file if Redis holds no config; False when there is no usable file."""
        try:
            config = self._read_file()
        except ModesError as exc:
            log.debug("no modes config of this host's own (%s)", exc)
            return False
        if self._seed(keys=[MODES_KEY], args=[config.digest, config.text, str(config.source), time.time()]):
            log.info("modes config version 1 published from %s: Redis held none", config.source)
        return True

    def _warn_if_stale(self) -> None:
        try:
            own = self._read_file()
        except ModesError:
            return
        if own.digest != self._redis.hget(MODES_KEY, "digest").decode():
            log.warning(
                "%s differs from the fleet's modes config (version %s): the fleet's is used; "
                "change the config on the API host (its file, or POST /api/modes/reload)",
                own.source,
                self._version,
            )

    @property
    def version(self) -> int:
        """The version of the config ``current`` last returned."""
        return self._version

    def current(self) -> ModesConfig:
        """The fleet's current config (re-read from Redis when another process published a new one)."""
        self._sync()
        if self._config is None:
            result = self.reload()
            if self._config is None:
                raise ModesError(result.error or "no modes config")
        return self._config

    def _sync(self) -> None:
        version = self._redis.hget(MODES_KEY, "version")
        if version is None or int(version) == self._version:
            return
        text, source = self._redis.hmget(MODES_KEY, "text", "source")
        config = parse_modes(text.decode(), Path(source.decode()))
        with self._lock:
            self._config, self._version = config, int(version)

    def status(self) -> dict[str, Any]:
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(MODES_KEY).items() if k != b"text"}
        error = {"message": raw["error"], "at": float(raw["error_at"])} if "error" in raw else None
        return {
            "version": int(raw.get("version", 0)),
            "digest": raw.get("digest"),
            "source": raw.get("source"),
            "published_at": float(raw["published_at"]) if "published_at" in raw else None,
            "error": error,
        }
