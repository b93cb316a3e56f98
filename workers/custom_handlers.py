"""Custom job handlers: named functions a worker may run on JSON arguments.

Only handlers registered here run: a job names a handler and carries JSON, never
code.  Deployments add their own by listing modules in CUSTOM_HANDLER_MODULES
(comma-separated); each module registers its functions with ``@handler("name")``
when the worker imports it at start.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.base import Backend


@dataclass(frozen=True)
class HandlerContext:
    job_id: str
    backend: Backend


Handler = Callable[[dict[str, Any], HandlerContext], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register ``function`` as the custom handler called ``name``."""

    def register(function: Handler) -> Handler:
        if name in HANDLERS and HANDLERS[name] is not function:
            raise ValueError(f"custom handler {name!r} is registered twice")
        HANDLERS[name] = function
        return function

    return register


def load_handler_modules() -> list[str]:
    """Import the modules named in CUSTOM_HANDLER_MODULES; return the registered names."""
    for module in filter(None, (m.strip() for m in os.environ.get("CUSTOM_HANDLER_MODULES", "").split(","))):
        importlib.import_module(module)
    return sorted(HANDLERS)


@handler("echo")
def echo(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """Return the arguments: a round trip through the queue and a worker."""
    return {"args": args}


@handler("worker_info")
def worker_info(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """What the worker that ran the job has loaded, and its memory."""
    return {
        "backend": context.backend.name,
        "mode": context.backend.loaded_mode,
        "memory": context.backend.memory_report(),
    }
