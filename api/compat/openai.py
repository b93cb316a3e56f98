"""OpenAI's Images API (``/v1``) on the job path, for the openai SDK, Open WebUI and LangChain.

``model`` is a mode's name (the default mode when omitted).  A generation or edit is a
``POST /api/jobs`` body, admitted and queued by the same code, and waits as ``POST /generate``
does.  Every error, those of authentication and rate limits included, takes OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}``.  ``quality``, ``style`` and ``user`` are
accepted and logged (the mode sets quality); ``background: transparent`` and ``stream`` are a 400.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

from flask import Blueprint, current_app, jsonify, request
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.compat import jobs
from api.errors import ApiError
from api.init_image import MAX_BYTES
from api.openapi import documented
from api.services import services
from api.views import image_url
from jobs.infotext import reencode
from jobs.wording import choices
from modes import Mode

bp = Blueprint("openai", __name__, url_prefix="/v1")
NATIVE_NAMES = {"num_inference_steps": "steps", "init_image": "image", "mode": "model", "mask_image": "mask"}
_FORM_OVERHEAD = 64 * 1024
_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded", 504: "timeout"}


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error body, which every error of these routes takes."""

    error: OpenAIErrorDetail


class ImageRequest(BaseModel):
    """What images/generations and images/edits share (unused OpenAI fields are extras, logged)."""

    model_config = ConfigDict(extra="allow")

    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(1, ge=1, le=10)
    size: str | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int = Field(95, ge=0, le=100)
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    background: Literal["auto", "opaque", "transparent"] | None = None
    stream: bool = False


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return _error(exc.status, exc.message, exc.field, exc.headers)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return _error(exc.code or 500, exc.description or exc.name, None, {})


@bp.post("/images/generations")
@documented(
    tags=("openai",),
    json=ImageRequest,
    ok={200: (None, "`created` and `data` ([{`b64_json` or `url`}]); `X-Job-Id` names the job.")},
    errors={
        400: "A field is invalid or not available here.",
        404: "Unknown `model` (mode).",
        413: "The request or upload is too large.",
        429: "Too many jobs wait, or the key's limits.",
        504: "The job did not end within `DEFAULT_TIMEOUT`.",
    },
    error_model=OpenAIError,
)
def generations():
    """OpenAI's images.generate: a generation job on the mode named by model."""
    req = _validated(request.get_json(silent=True))
    return _images(req, {})


@bp.post("/images/edits")
@documented(
    tags=("openai",),
    form=ImageRequest,
    ok={200: (None, "img2img on the uploaded `image`: `created` and `data`, as generations.")},
    errors={
        400: "A field is invalid, or the `mask` has no alpha channel.",
        404: "Unknown `model` (mode).",
        413: "The request or upload is too large.",
        429: "Too many jobs wait, or the key's limits.",
        504: "The job did not end within `DEFAULT_TIMEOUT`.",
    },
    error_model=OpenAIError,
)
def edits():
    """OpenAI's images.edit: img2img on the uploaded image; with a mask, inpainting where it is transparent."""
    request.max_content_length = 2 * MAX_BYTES + _FORM_OVERHEAD
    try:
        form, files = request.form.to_dict(), request.files
    except RequestEntityTooLarge:
        raise ApiError(413, f"the upload is larger than {MAX_BYTES // (1024 * 1024)} MiB", "image") from None
    uploads = files.getlist("image") + files.getlist("image[]")
    if len(uploads) != 1:
        raise ApiError(400, f"image: send one image file (got {len(uploads)})", "image")
    if form.get("mask"):
        raise ApiError(400, "mask: send the mask as a file, a PNG with an alpha channel", "mask")
    req = _validated(form)
    extra = {"init_image": jobs.png_base64(uploads[0].read(MAX_BYTES + 1), "image")}
    mask = files.get("mask")
    if mask is not None:
        extra["mask_image"] = jobs.mask_base64(mask.read(MAX_BYTES + 1), "mask", _transparent_is_edited)
    return _images(req, extra)


def _transparent_is_edited(image: Image.Image) -> Image.Image:
    """OpenAI's mask as ours: its fully transparent pixels are edited (white), the rest kept (black)."""
    if image.mode not in ("LA", "RGBA"):
        raise ApiError(400, "mask: send a PNG with an alpha channel; its fully transparent areas are edited", "mask")
    return image.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)


@bp.get("/models")
@documented(tags=("openai",), ok={200: (None, "The modes as models.")}, error_model=OpenAIError)
def models():
    """The modes, as OpenAI's models."""
    modes = services().modes
    return jsonify({"object": "list", "data": [_model(mode) for mode in modes.modes.values()]})


def _model(mode: Mode) -> dict[str, Any]:
    return {"id": mode.name, "object": "model", "created": 0, "owned_by": "dreamlab"}


def _images(req: ImageRequest, extra: dict[str, Any]):
    if req.stream:
        raise ApiError(400, "stream: streamed images are not available; send stream false", "stream")
    if req.background == "transparent":
        raise ApiError(400, "background: transparent backgrounds are not available", "background")
    url = req.response_format == "url"
    if url and req.output_format != "png":
        raise ApiError(400, "output_format: a url serves the PNG; use b64_json for jpeg or webp", "output_format")
    modes = services().modes.modes
    if req.model is not None and req.model not in modes:
        raise ApiError(
            404, f"The model '{req.model}' does not exist; the models are the modes {choices(sorted(modes))}", "model"
        )
    body = {"mode": req.model, "prompt": req.prompt, "n": req.n, "size": _size(req.size), **extra}
    try:
        record = jobs.submit({k: v for k, v in body.items() if v is not None}, _ignored(req))
    except ApiError as exc:
        raise jobs.renamed(exc, NATIVE_NAMES) from None
    done = jobs.wait(record["id"])
    if url:
        count = len(done["result"]["images"])
        data = [{"url": _absolute(image_url(done["id"], index))} for index in range(count)]
    else:
        quality = req.output_compression
        data = [{"b64_json": _b64(reencode(png, req.output_format, quality))} for png in jobs.images(done)]
    result = done["result"]
    answer = {
        "created": int(time.time()),
        "data": data,
        "output_format": req.output_format,
        "size": f"{result['width']}x{result['height']}",
    }
    return jsonify(answer), 200, {"X-Job-Id": record["id"]}


def _ignored(req: ImageRequest) -> list[str]:
    sent = {"quality": req.quality, "style": req.style, "user": req.user, **(req.model_extra or {})}
    return sorted(name for name, value in sent.items() if value is not None)


def _size(size: str | None) -> str | None:
    """OpenAI's ``auto`` is the mode's default size."""
    return None if size in (None, "auto") else size


def _absolute(path: str) -> str:
    return request.host_url.rstrip("/") + path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _validated(body: Any) -> ImageRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "send a JSON object (or multipart form for edits) with at least 'prompt'")
    try:
        return ImageRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise ApiError(400, f"{field}: {error['msg']}" if field else error["msg"], field) from None


def _error(status: int, message: str, param: str | None, headers: dict[str, str]):
    """OpenAI's error body and status (the openai SDK picks its exception class by status)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    code = "model_not_found" if status == 404 and param == "model" else _CODES.get(status)
    current_app.logger.info("openai-compatible request answered %d: %s", status, message)
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return jsonify(body), status, headers
