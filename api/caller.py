"""Who is calling: the API key a request authenticated with (api/auth.py), kept on ``flask.g``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

USER, ADMIN = "user", "admin"
ROLES = (USER, ADMIN)


@dataclass(frozen=True)
class Caller:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def current_caller() -> Caller | None:
    """The request's key; None under AUTH=off, where every caller may do everything."""
    return g.get("dreamlab_caller")


def owner_name() -> str:
    """The name a new job's record keeps as its owner ("" under AUTH=off)."""
    caller = current_caller()
    return caller.name if caller else ""


def sees_everything() -> bool:
    caller = current_caller()
    return caller is None or caller.is_admin
