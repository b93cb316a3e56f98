"""The OpenAPI document, generated from the request and response models (api/schemas/) by spectree.

A view gains its schema with one decorator, ``@documented(...)``, under its ``@bp.get/post``; the
view still validates its own body (``api.schemas.parse``) so that errors keep the API's shape.
``python -m scripts.openapi`` prints the document without Redis.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from pydantic import BaseModel
from spectree import Response, SpecTree
from spectree.plugins.flask_plugin import FlaskPlugin

from api.schemas.responses import ErrorBody

TITLE, VERSION = "Dream Lab API", "1.0.0"
DESCRIPTION = """\
Stable Diffusion image generation as jobs. `POST /api/jobs` queues a job and returns at once; poll
`GET /api/jobs/{job_id}` and fetch the image from `GET /api/jobs/{job_id}/result`. `POST /generate`
does the same in one blocking call. `POST /superres` and `POST /api/superres` upscale an uploaded
image with the Sub-Pixel CNN (x3 per pass) as jobs on their own queue.

Every error response has the JSON body `{"error": {"message": ..., "field": ...}}`; `field` is
present only when a request field caused the error, and a refused request body adds `errors`, one
`{"field", "message"}` for each field at fault. That includes 404 for unknown routes, 405 for wrong
methods, and 500 for unexpected failures. The one exception is `GET /healthz`, which answers 503
with its own body.

Job records live in Redis for `JOB_TTL` seconds (default 7 days); after that the job's ID answers 404.

With `AUTH=keys` every endpoint but `GET /healthz`, this document and `/docs` needs an API key,
sent as `Authorization: Bearer <key>` or as the password of HTTP basic auth (401 without one). A
`user` key reads, cancels and fetches only the jobs it submitted (another key's job answers 404),
sees `GET /api/modes` without file paths, and gets 403 on the operators' endpoints (reload, switch,
custom jobs, `/api/vram`, `/api/models/status`). Each key has a request rate (`KEY_RATE`,
`KEY_BURST`) and a number of jobs queued plus running (`KEY_JOBS_MAX`) and, when set, of jobs a UTC
day (`KEY_JOBS_PER_DAY`); beyond them, 429 with `Retry-After`. With `AUTH=off` (the default) no
key is asked for.
"""
TAGS = {
    "jobs": "Submit, poll, cancel and fetch jobs.",
    "legacy": "The original Dream Lab's synchronous endpoint, a submit-then-wait wrapper over the job path.",
    "superres": "Super-resolution of uploaded images (x3 per pass), as jobs on the superres queue.",
    "status": "Modes, workers, queues, health, metrics and this document.",
    "a1111": "AUTOMATIC1111's web API (`/sdapi/v1`) on the same job path, for webuiapi and Open WebUI "
    "(docs/compat.md). Its bodies take A1111's fields; those it has no use for are ignored and logged.",
    "openai": "OpenAI's Images API (`/v1`) on the same job path, for the openai SDK (docs/compat.md); "
    "errors take OpenAI's shape.",
}
SECURITY_SCHEMES = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `python -m api.keys create` (with `AUTH=keys`).",
    },
    "basicKey": {
        "type": "http",
        "scheme": "basic",
        "description": "The same key as the password of HTTP basic auth (A1111-style clients); user name ignored.",
    },
}
UNAUTHORIZED = (
    "`AUTH=keys` and the request has no API key, or an unknown or revoked one; the message says how to get one."
)
RATE_LIMITED = (
    "The key exceeded its request rate (`KEY_RATE` a second, bursts of `KEY_BURST`); `Retry-After` says when."
)


class DocumentOnly(FlaskPlugin):
    """spectree's Flask plugin without its request-time part: a view validates its own body (errors in
    the API's shape) and its answer goes out untouched (spectree's would read a streamed file into memory)."""

    def validate(self, func: Callable, *_spectree_args: Any, **view_args: Any) -> Any:
        return func(**view_args)  # Flask passes a view its URL's variables by name


spec = SpecTree(
    "flask",
    backend=DocumentOnly,
    mode="strict",
    title=TITLE,
    version=VERSION,
    annotations=False,
    validation_error_status=400,
    validation_error_model=ErrorBody,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
)
# view function -> {status: media types} for the responses that are not JSON (images, text).
_MEDIA: dict[Callable, dict[int, tuple[str, ...]]] = {}


def documented(
    *,
    tags: tuple[str, ...],
    ok: dict[int, tuple[type[BaseModel] | None, str]],
    errors: dict[int, str] | None = None,
    json: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    media: dict[int, tuple[str, ...]] | None = None,
    needs_key: bool = True,
    error_model: type[BaseModel] = ErrorBody,
) -> Callable[[Callable], Callable]:
    """Put a view in the OpenAPI document: its body model (``json`` or a multipart ``form``), its ``query``
    parameters, its answers
    (``ok``: status -> (model or None, description); ``errors``: status -> description, body ErrorBody),
    and ``media`` for answers that are not JSON; ``error_model`` for routes that speak another API's
    error shape (OpenAI's).  Validation stays in the view."""
    codes = {f"HTTP_{status}": answer for status, answer in ok.items()}
    failures = dict(errors or {})
    if needs_key:
        failures = {401: UNAUTHORIZED, 429: RATE_LIMITED, **failures}
    codes.update({f"HTTP_{status}": (error_model, text) for status, text in failures.items()})

    def decorate(view: Callable) -> Callable:
        validate = spec.validate(
            json=json,
            form=form,
            query=query,
            resp=Response(**codes),
            tags=list(tags),
            operation_id=view.__name__,
        )
        wrapped = validate(view)
        if media:
            _MEDIA[wrapped] = media
        return wrapped

    return decorate


def undocumented_routes(app: Flask) -> list[str]:
    """Routes of ``app`` that have no schema in the document (every route should have one)."""
    return sorted(
        f"{sorted(rule.methods - {'HEAD', 'OPTIONS'})} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and spec.get_function_metadata(app.view_functions[rule.endpoint]) is None
    )


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes, built once per app."""
    if "dreamlab.openapi" not in app.extensions:
        models = copy.deepcopy(spec.models)  # spectree moves the nested models' $defs out of them as it goes
        try:
            with app.app_context():
                doc = spec._generate_spec()  # spec.spec would keep the first app's document; tests build many apps
        finally:
            spec.models = models
        _finish(doc, app)
        app.extensions["dreamlab.openapi"] = doc
    return app.extensions["dreamlab.openapi"]


def _finish(doc: dict[str, Any], app: Flask) -> None:
    """What spectree leaves out: the description, tag texts, security, and the non-JSON answers."""
    doc["info"]["description"] = DESCRIPTION
    doc["servers"] = [{"url": "/"}]
    doc["tags"] = [{"name": name, "description": text} for name, text in TAGS.items()]
    doc["components"]["securitySchemes"] = SECURITY_SCHEMES
    doc["security"] = [{"bearerKey": []}, {"basicKey": []}, {}]
    for rule in app.url_map.iter_rules():
        media = _MEDIA.get(app.view_functions[rule.endpoint])
        if not media:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            responses = doc["paths"][path][method.lower()]["responses"]
            for status, types in media.items():
                body = {"schema": {"type": "string", "format": "binary"}}
                responses[str(status)]["content"] = dict.fromkeys(types, body)
