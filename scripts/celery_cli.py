"""Celery's command line against `make run`'s stack: ``make celery ARGS='inspect active'``.

Builds the broker URL as `make run` does (REDIS_URL, or its own Redis on REDIS_PORT with
the password in .state/redis.password), then runs ``celery <ARGS>`` with the project's
Celery settings.
"""

from __future__ import annotations

import os
import sys

from scripts.run_stack import stack_env


def main(argv: list[str]) -> None:
    env = stack_env(dict(os.environ))
    command = [sys.executable, "-m", "celery", "--config=celeryconfig", *argv]
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
