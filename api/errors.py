"""JSON errors: ``{"error": {"message": ..., "field": ...}}`` for every failure; a refused request body
adds ``errors``, one ``{"field", "message"}`` for each field at fault (``field`` names the first)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import redis
from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from storage import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.errors = errors or []


def error_body(message: str, field: str | None = None, errors: list[FieldError] | None = None) -> dict:
    error: dict = {"message": message}
    if field:
        error["field"] = field
    if errors:
        error["errors"] = [asdict(e) for e in errors]
    return {"error": error}


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with a body nested too deeply to parse answered 400 rather than a RecursionError's 500."""

    def loads(self, s: str | bytes, **kwargs: object) -> object:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ApiError(400, "the JSON body is nested too deeply to parse; send a flat JSON object") from None


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(error_body(exc.message, exc.field, exc.errors)), exc.status, exc.headers

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return jsonify(error_body(f"the request body is larger than MAX_JSON_BYTES={limit} bytes")), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return jsonify(error_body(exc.description or exc.name)), exc.code, headers

    @app.errorhandler(redis.RedisError)
    def redis_down(exc: redis.RedisError):
        log.error("Redis error: %s", exc)
        return jsonify(error_body(f"Redis is unavailable ({exc}); check that Redis at REDIS_URL is up")), 503

    @app.errorhandler(StoreError)
    def store_unusable(exc: StoreError):
        log.error("object store error: %s", exc)
        return jsonify(error_body(f"the object store is unavailable: {exc}")), 503

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return jsonify(error_body("internal error; the API log has the details")), 500
