"""AUTH=keys: every request but /healthz names an API key (api/keystore.py), spends a token of its
rate bucket (api/limits.py), and a user key is kept to the endpoints users may call.

A key is sent as ``Authorization: Bearer <key>`` (the OpenAI SDK's way) or as the password of
HTTP basic auth (A1111-style clients such as webuiapi), the user name being ignored.
"""

from __future__ import annotations

import math

from flask import Flask, g, request

from api.caller import Caller
from api.errors import ApiError
from api.services import services

# The docs page, its assets and the OpenAPI document describe the code, not the fleet: no key for them.
OPEN_ENDPOINTS = {
    "status.healthz",
    "static",
    "docs.openapi_json",
    "docs.openapi_yaml",
    "docs.docs_page",
    "docs.docs_asset",
    "page.index",  # the web page asks for a key itself
}
# Operators' endpoints: a user key gets 403.  The fleet views show hosts, PIDs, model paths and
# the running jobs' IDs of every key, so a user gets no filtered view of them either.
ADMIN_ENDPOINTS = {
    "modes.reload_modes",
    "modes.switch_mode",
    "custom.submit_custom",
    "status.vram",
    "status.models_status",
}
HOW_TO_GET_ONE = (
    "send 'Authorization: Bearer <key>' (or HTTP basic auth with the key as password); "
    "an operator creates keys with: python -m api.keys create --role user --name NAME"
)


def install(app: Flask) -> None:
    @app.before_request
    def authenticate() -> None:
        if services().settings.auth != "keys" or request.endpoint in OPEN_ENDPOINTS:
            return
        caller = _caller()
        g.dreamlab_caller = caller
        _spend_token(caller)
        if request.endpoint in ADMIN_ENDPOINTS and not caller.is_admin:
            raise ApiError(403, f"{request.method} {request.path} needs an admin key; key {caller.name!r} is a user")


def _caller() -> Caller:
    key = _sent_key()
    if not key:
        raise ApiError(401, f"an API key is required: {HOW_TO_GET_ONE}", headers=_challenge())
    caller = services().keys.lookup(key)
    if caller is None:
        raise ApiError(401, f"the API key is unknown or revoked: {HOW_TO_GET_ONE}", headers=_challenge())
    return caller


def _sent_key() -> str | None:
    auth = request.authorization
    if auth is None:
        return None
    if auth.type == "bearer":
        return auth.token
    if auth.type == "basic":
        return auth.password
    return None


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="dreamlab"'}


def _spend_token(caller: Caller) -> None:
    limits = services().limits
    wait = limits.take_request(caller.name)
    if wait > 0:
        raise ApiError(
            429,
            f"key {caller.name!r} made more than KEY_BURST={limits.settings.burst} requests "
            f"at KEY_RATE={limits.settings.rate:g}/s; retry after {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
