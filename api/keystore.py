"""API keys in Redis, kept as SHA-256 digests only: the key itself is shown once, when made
(api/keys.py), and every request looks its key up, so a revoked key is refused at once."""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import redis

from api.caller import ROLES, Caller
from jobs.keys import PREFIX

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KEY_PREFIX = "dl_"


def digest_key(digest: str) -> str:
    """The hash holding the name and role of the key with this SHA-256 ``digest``."""
    return f"{PREFIX}:apikey:{digest}"


def name_key(name: str) -> str:
    """The digest of the key called ``name``, so that it can be revoked by name."""
    return f"{PREFIX}:apikey-name:{name}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def create(self, name: str, role: str) -> str:
        """A new key for ``name`` with ``role``; ValueError when the name is taken or malformed."""
        if not NAME.match(name):
            raise ValueError(f"name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if role not in ROLES:
            raise ValueError(f"role {role!r} must be one of {', '.join(ROLES)}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        hashed = digest(key)
        if not self._redis.set(name_key(name), hashed, nx=True):
            raise ValueError(f"a key named {name!r} exists; revoke it first or choose another name")
        self._redis.hset(digest_key(hashed), mapping={"name": name, "role": role, "created_at": int(time.time())})
        return key

    def revoke(self, name: str) -> bool:
        """Delete the key called ``name``; False when there is none."""
        hashed = self._redis.get(name_key(name))
        if hashed is None:
            return False
        pipe = self._redis.pipeline()
        pipe.delete(digest_key(hashed.decode()), name_key(name))
        pipe.execute()
        return True

    def lookup(self, key: str) -> Caller | None:
        raw = self._redis.hmget(digest_key(digest(key)), "name", "role")
        if raw[0] is None or raw[1] is None:
            return None
        return Caller(raw[0].decode(), raw[1].decode())
