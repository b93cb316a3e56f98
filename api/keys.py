"""API keys from the command line (the store itself: api/keystore.py).

``python -m api.keys create --role user|admin --name NAME`` prints the new key alone on its
last line (it is shown once: Redis keeps only its digest); ``python -m api.keys revoke NAME``
deletes it, and the next request with it is refused.
"""

from __future__ import annotations

import argparse
import sys

import redis

from api.caller import ROLES
from api.keystore import KeyStore
from config import Settings


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
        revoked = store.revoke(args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"error: Redis at REDIS_URL is unavailable ({exc}); keys live there", file=sys.stderr)
        return 1
    if not revoked:
        print(f"error: no key named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
