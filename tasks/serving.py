"""Which mode each live worker of a backend serves, with the count per mode kept beside it.

Each router writes only its own entry (worker -> "mode|expires_ms|state") in
``serving_key``; the same Lua step adjusts ``servers_key`` (mode -> servers, and
"mode|idle" -> idle servers), so any router reads the fleet's servers per mode in
O(modes), never O(workers).  A move is atomic against other routers: a worker takes a
mode only if no more than the servers it saw serve it now.  A worker's heartbeat
carries the renewal of its entry, busy or idle (``beat``: one script for both).  An
entry a dead worker stopped renewing is dropped (and its counts with it) by the
backend's allocator (tasks/allocator.py), the one reader of the whole hash.
"""

from __future__ import annotations

import redis

from jobs.keys import servers_key, serving_key

ANY = 1 << 30

# KEYS: serving, servers. ARGV: worker, mode, most other servers allowed, lease ms, state.
_SERVE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local old = redis.call('HGET', KEYS[1], ARGV[1])
local old_mode, old_state = nil, nil
if old then
  local first = string.find(old, '|', 1, true)
  local second = string.find(old, '|', first + 1, true)
  old_mode, old_state = string.sub(old, 1, first - 1), string.sub(old, second + 1)
end
if old_mode ~= ARGV[2] then
  local others = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
  if others > tonumber(ARGV[3]) then return 0 end
end
if old_mode ~= ARGV[2] or old_state ~= ARGV[5] then
  if old then
    redis.call('HINCRBY', KEYS[2], old_mode, -1)
    if old_state == 'idle' then redis.call('HINCRBY', KEYS[2], old_mode .. '|idle', -1) end
  end
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  if ARGV[5] == 'idle' then redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|idle', 1) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. (now + tonumber(ARGV[4])) .. '|' .. ARGV[5])
return 1
"""

# The worker's heartbeat and the renewal of its entry in one step. KEYS: serving, servers, the heartbeat's
# hash. ARGV: as _SERVE (mode '': no entry to renew), then the heartbeat's TTL (s) and its field, value pairs.
_BEAT = (
    """
redis.call('HSET', KEYS[3], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[3], ARGV[6])
if ARGV[2] == '' then return 1 end
"""
    + _SERVE
)

# Drop an entry (a worker leaving, or one that expired) if it still holds the value seen. KEYS as _SERVE.
_LEAVE = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value or (ARGV[2] ~= '' and value ~= ARGV[2]) then return 0 end
local first = string.find(value, '|', 1, true)
local second = string.find(value, '|', first + 1, true)
local mode = string.sub(value, 1, first - 1)
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], mode, -1)
if string.sub(value, second + 1) == 'idle' then redis.call('HINCRBY', KEYS[2], mode .. '|idle', -1) end
return 1
"""


class ServingTable:
    def __init__(self, client: redis.Redis, backend: str) -> None:
        self._redis = client
        self._keys = [serving_key(backend), servers_key(backend)]
        self._serve = client.register_script(_SERVE)
        self._beat = client.register_script(_BEAT)
        self._leave = client.register_script(_LEAVE)

    def serve(self, worker: str, mode: str, lease_ms: int, state: str, most_others: int = ANY) -> bool:
        """Record ``worker`` serving ``mode`` for ``lease_ms`` more; False (nothing written) when it moves
        to a mode that more than ``most_others`` other workers serve now."""
        return bool(self._serve(keys=self._keys, args=[worker, mode, most_others, lease_ms, state]))

    def beat(self, worker: str, mode: str, lease_ms: int, state: str, key: str, fields: dict, ttl: int) -> None:
        """Write ``worker``'s heartbeat (``fields`` into the hash ``key``, kept ``ttl`` seconds) and renew its
        entry on ``mode`` (none when ``mode`` is empty) for ``lease_ms`` more, ``state`` now: one script."""
        pairs = [item for field in fields.items() for item in field]
        self._beat(keys=[*self._keys, key], args=[worker, mode, ANY, lease_ms, state, ttl, *pairs])

    def leave(self, worker: str, seen: str = "") -> bool:
        """Drop ``worker``'s entry (only if it still reads ``seen``, when given)."""
        return bool(self._leave(keys=self._keys, args=[worker, seen]))

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Live servers and idle servers per mode (modes with none left out): O(modes)."""
        servers: dict[str, int] = {}
        idle: dict[str, int] = {}
        for field, value in self._redis.hgetall(self._keys[1]).items():
            name, number = field.decode(), int(value)
            if number <= 0:
                continue
            if name.endswith("|idle"):
                idle[name[: -len("|idle")]] = number
            else:
                servers[name] = number
        return servers, idle

    def entries(self) -> dict[str, tuple[str, int, str]]:
        """Every entry: worker -> (mode, expires_ms, state).  O(workers): the allocator's read only."""
        out = {}
        for worker, value in self._redis.hgetall(self._keys[0]).items():
            mode, expires, state = value.decode().split("|")
            out[worker.decode()] = (mode, int(expires), state)
        return out

    def drop_expired(self, now_ms: int) -> list[str]:
        """Drop the entries whose lease ran out before ``now_ms`` (Redis' clock); the workers dropped."""
        dropped = []
        for worker, (mode, expires, state) in self.entries().items():
            if expires < now_ms and self.leave(worker, f"{mode}|{expires}|{state}"):
                dropped.append(worker)
        return dropped
