"""API keys: created and revoked by an operator, stored in Redis as SHA-256 digests only.

``python -m api.keys create --role user|admin --name NAME`` prints the new key alone on its
last line (it is shown once: Redis keeps only its digest); ``python -m api.keys revoke NAME``
deletes it, and the next request with it is refused, since every request looks its key up.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import sys
import time

import redis

from api.caller import ROLES, Caller
from config import Settings
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.keys", description="Create and revoke Dream Lab API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key; it is printed once, on the last line")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", required=True)
    revoke = commands.add_parser("revoke", help="revoke the key called NAME at once")
    revoke.add_argument("name")
    args = parser.parse_args(argv)
    store = KeyStore(redis.Redis.from_url(Settings.from_env().redis_url))
    try:
        if args.command == "create":
            key = store.create(args.name, args.role)
            print(f"API key {args.name!r} ({args.role}); send it as 'Authorization: Bearer <key>'. It is shown once:")
            print(key)
            return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not store.revoke(args.name):
        print(f"error: no key named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
