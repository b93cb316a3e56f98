"""Read an uploaded image from a multipart request and reject what no worker should see: too many
bytes (413), empty files, non-images, truncated files, zero sizes, absurd aspect ratios and
decompression bombs (400), all before anything is recorded or enqueued."""

from __future__ import annotations

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import ApiError
from api.superres_fields import check_pixels
from config import SuperResSettings
from jobs.images import ImageInfo, ImageRejected, decode, probe

# Multipart framing and the small fields beside the file.
_FORM_OVERHEAD = 64 * 1024
# Header-only probe: no pixel limit yet, so the SR_MAX_PIXELS message can name the size first.
_NO_LIMIT = 2**62


def read_upload(request: Request, sr: SuperResSettings) -> tuple[bytes, dict[str, str | list[str]]]:
    """The ``file`` field's bytes and the other form fields (a repeated one as a list), or a 4xx."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(400, "send the image as multipart/form-data with a 'file' field", "file")
    request.max_content_length = sr.max_upload_bytes + _FORM_OVERHEAD
    try:
        files = request.files
        form = {key: values[0] if len(values) == 1 else values for key, values in request.form.lists()}
    except RequestEntityTooLarge:
        raise _too_large(sr) from None
    extra = sorted(set(files) - {"file"})
    if extra:
        raise ApiError(400, f"unknown file field {extra[0]!r}; send the image as 'file'", extra[0])
    upload = files.get("file")
    if upload is None:
        raise ApiError(400, "the 'file' field is required: the image to upscale", "file")
    data = upload.read(sr.max_upload_bytes + 1)
    if len(data) > sr.max_upload_bytes:
        raise _too_large(sr)
    return data, form


def check_image(data: bytes, magnitude: int, sr: SuperResSettings) -> ImageInfo:
    """Header checks, the SR_MAX_PIXELS check for ``magnitude``, then a full decode (bounded by that limit)."""
    try:
        info = probe(data, _NO_LIMIT)
        check_pixels(info.width, info.height, magnitude, sr, "magnitude")
        decode(data, sr.max_pixels // sr.factor**2)
    except ImageRejected as exc:
        raise ApiError(400, f"file: {exc}", "file") from None
    return info


def _too_large(sr: SuperResSettings) -> ApiError:
    return ApiError(413, f"the upload is larger than SR_MAX_UPLOAD_BYTES={sr.max_upload_bytes} bytes", "file")
