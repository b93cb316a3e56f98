"""Validate a request body against its model and turn every pydantic error into one 4xx that lists
them all, each naming its field, in the API's error shape (api/errors.py)."""

from __future__ import annotations

from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from api.errors import ApiError, FieldError
from api.schemas.hints import hint
from jobs.wording import choices, sent

M = TypeVar("M", bound=BaseModel)
NOT_AN_OBJECT = "request body must be a JSON object, sent with Content-Type: application/json"
# The type of an error raised by a validator that already wrote the whole message (see field_error).
FIELD_ERROR = "dreamlab"


def field_error(message: str, status: int = 400) -> PydanticCustomError:
    """Raise this from a validator: ``message`` reaches the client as written, with ``status``."""
    return PydanticCustomError(FIELD_ERROR, "{message}", {"message": message, "status": status})


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, NOT_AN_OBJECT)
    return body


def parse(model: type[M], body: Any, context: Any = None) -> M:
    """``body`` validated as ``model``, or an ApiError naming every field at fault (the first one in ``field``)."""
    try:
        return model.model_validate(json_object(body), context=context)
    except ValidationError as exc:
        raise refusal(model, exc.errors(include_url=False)) from None


def refusal(model: type[BaseModel], errors: list[ErrorDetails]) -> ApiError:
    """One ApiError for all of a request's errors: 404 when each is a not-found one (an unknown mode), else 400."""
    found, listed = [], False  # the accepted fields are listed once, with the first unknown field
    for error in errors:
        found.append(FieldError(_field(error), _message(model, error, list_accepted=not listed)))
        listed = listed or error["type"] == "extra_forbidden"
    statuses = {_status(error) for error in errors}
    status = statuses.pop() if len(statuses) == 1 else 400
    return ApiError(status, "; ".join(e.message for e in found), found[0].field, errors=found)


def _field(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"])


def _status(error: ErrorDetails) -> int:
    return int(error.get("ctx", {}).get("status", 400)) if error["type"] == FIELD_ERROR else 400


def _message(model: type[BaseModel], error: ErrorDetails, list_accepted: bool) -> str:
    field, kind, value = _field(error), error["type"], error.get("input")
    if kind == FIELD_ERROR:
        return error["ctx"]["message"]
    if kind == "extra_forbidden":
        return unknown_field_message(model, field, list_accepted)
    if kind == "missing" or (value is None and kind.endswith("_type")):
        return _required(model, field)
    low, high = _bounds(model, field)
    span = f" between {low} and {high}" if low is not None and high is not None else ""
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"{field} must be a whole number{span}"
    if kind in ("float_type", "float_parsing"):
        return f"{field} must be a number{span}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{field} must be{span or ' in range'}, got {value}"
    if kind == "string_unicode":
        return f"{field} is not valid Unicode text: a lone surrogate at character {_surrogate(value)}"
    if kind == "literal_error":
        return f"{field} must be {error['ctx']['expected']}, got {sent(value)}"
    if kind == "string_type":
        return f"{field} must be a string"
    if kind == "string_too_long":
        return f"{field} is longer than {error['ctx']['max_length']} characters"
    if kind == "string_too_short":
        return f"{field} must not be empty"
    if kind in ("bool_type", "bool_parsing"):
        return f"{field} must be true or false"
    if kind in ("dict_type", "model_type"):
        return f"{field} must be a JSON object"
    return f"{field}: {error['msg']}"


def _surrogate(text: Any) -> int:
    try:
        str(text).encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return -1


def _required(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    what = info.description.split("\n")[0].rstrip(".") if info and info.description else ""
    return f"{field} is required: {what[:1].lower()}{what[1:]}" if what else f"{field} is required"


def _bounds(model: type[BaseModel], field: str) -> tuple[Any, Any]:
    info = model.model_fields.get(field)
    low = high = None
    for rule in info.metadata if info else ():
        if isinstance(rule, (annotated_types.Ge, annotated_types.Gt)):
            low = getattr(rule, "ge", getattr(rule, "gt", None))
        if isinstance(rule, (annotated_types.Le, annotated_types.Lt)):
            high = getattr(rule, "le", getattr(rule, "lt", None))
    return low, high


def unknown_field_message(model: type[BaseModel], field: str, list_accepted: bool = True) -> str:
    """Names the accepted fields, and our name for a field other image APIs (A1111, OpenAI) call otherwise."""
    accepted = list(model.model_fields)
    tip = hint(field, accepted)
    listing = f"; accepted fields are {choices(accepted)}" if list_accepted else ""
    return f"unknown field {field!r}{listing}" + (f"; {tip}" if tip else "")
