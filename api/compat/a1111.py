"""AUTOMATIC1111's web API (``/sdapi/v1``) on the job path, for webuiapi, Open WebUI and friends.

Modes are A1111's checkpoints: ``sd_model_checkpoint`` (per caller, set through
``POST /sdapi/v1/options``) picks the mode of the caller's jobs, and setting it queues a
switch as ``POST /api/modes/switch`` does.  txt2img and img2img become ``POST /api/jobs``
bodies and wait as ``POST /generate`` does; extra-single-image is a super-resolution job.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from typing import Any, TypeVar

from flask import Blueprint, current_app, jsonify, request
from PIL import Image, ImageOps
from pydantic import BaseModel, ValidationError

from api.caller import owner_name, sees_everything
from api.compat import jobs
from api.compat.a1111_controlnet import control_fields, is_controlnet
from api.compat.a1111_models import ExtraSingleImage, Generation, Img2Img, Options, Txt2Img
from api.errors import ApiError
from api.jobs import result_png
from api.openapi import documented
from api.schemas.generation import DEFAULT_QUALITY
from api.services import services
from api.superres import submit as submit_superres
from api.superres_fields import require_enabled, sr_settings
from api.uploads import check_image
from api.validation import json_object
from api.waiting import wait_for_success
from api.webhook_fields import header_webhook
from jobs.keys import MODEL_HASHES, PREFIX
from jobs.records import RUNNING, TERMINAL
from jobs.samplers import A1111_NAMES, SCHEDULE_SUFFIXES
from jobs.superres import MAX_MAGNITUDE, UPSCALER, SuperResOptions
from jobs.wording import choices
from modes import Mode

bp = Blueprint("a1111", __name__, url_prefix="/sdapi/v1")
Body = TypeVar("Body", bound=BaseModel)
# Native field -> A1111's, so a refusal names what the client sent.
NATIVE_NAMES = {
    "num_inference_steps": "steps",
    "guidance_scale": "cfg_scale",
    "init_image": "init_images",
    "strength": "denoising_strength",
    "sampler": "sampler_name",
    "size": "width/height",
    "mode": "sd_model_checkpoint",
    "n": "batch_size x n_iter",
    "mask_image": "mask",
}
# alwayson_scripts entries clients send switched off (webuiapi sends these when an extension is absent).
_OFF = ([], [False])
_NEUTRAL: tuple[Any, ...] = (None, False, 0, "", [], {})


def checkpoint_key(owner: str) -> str:
    return f"{PREFIX}:compat:checkpoint:{owner}"


@bp.post("/txt2img")
@documented(
    tags=("a1111",),
    json=Txt2Img,
    ok={
        200: (
            None,
            "`images` (base64 PNGs), `parameters` and `info` (a JSON string) as A1111 answers; `X-Job-Id`: the job.",
        )
    },
    errors={
        400: "A field is invalid or cannot be honoured here; the message says which.",
        404: "Unknown `sd_model_checkpoint`.",
        429: "Too many jobs wait (`QUEUE_MAX`), or the key's limits; `Retry-After` says when.",
        504: "The job did not end within `DEFAULT_TIMEOUT`; the message names it (poll `/api/jobs/<id>`).",
    },
)
def txt2img():
    """A1111's txt2img: a generation job, waited for like POST /generate."""
    req = _validated(Txt2Img, request.get_json(silent=True))
    return _generate(req, {})


@bp.post("/img2img")
@documented(
    tags=("a1111",),
    json=Img2Img,
    ok={200: (None, "`images`, `parameters` and `info`, as txt2img; `X-Job-Id` names the job.")},
    errors={
        400: "A field is invalid or cannot be honoured here; the message says which.",
        404: "Unknown `sd_model_checkpoint`.",
        429: "Too many jobs wait (`QUEUE_MAX`), or the key's limits; `Retry-After` says when.",
        504: "The job did not end within `DEFAULT_TIMEOUT`; the message names it (poll `/api/jobs/<id>`).",
    },
)
def img2img():
    """A1111's img2img: the first init image as a generation job's init_image; with a mask, inpainting."""
    req = _validated(Img2Img, request.get_json(silent=True))
    if len(req.init_images) > 1:
        raise ApiError(400, "init_images: send one image (the service runs img2img on one input)", "init_images")
    init = jobs.png_base64(_decoded(req.init_images[0], "init_images"), "init_images")
    extra = {"init_image": init, "strength": req.denoising_strength}
    if req.mask:
        invert = req.inpainting_mask_invert == 1
        mask = jobs.mask_base64(_decoded(req.mask, "mask"), "mask", lambda image: _grey(image, invert))
        extra.update(mask_image=mask, mask_blur=req.mask_blur)
    return _generate(req, extra)


def _grey(image: Image.Image, invert: bool) -> Image.Image:
    """A1111's mask as ours: its grey levels, white = repaint (inverted on request)."""
    grey = image.convert("L")
    return ImageOps.invert(grey) if invert else grey


@bp.post("/extra-single-image")
@documented(
    tags=("a1111",),
    json=ExtraSingleImage,
    ok={200: (None, "`image` (base64 PNG) and `html_info`: the fewest x3 passes reaching `upscaling_resize`.")},
    errors={
        400: "The image or a field is invalid.",
        413: "The image is larger than the super-resolution limits.",
        429: "The superres queue is full; `Retry-After` says when.",
        503: "Super-resolution is off (`SR_ENABLED=0`).",
        504: "The job did not end within its timeout; the message names it.",
    },
)
def extra_single_image():
    """A1111's extras upscale: a super-resolution job."""
    req = _validated(ExtraSingleImage, request.get_json(silent=True))
    sr = sr_settings()
    require_enabled(sr, "upscaling_resize")
    if req.resize_mode != 0:
        raise ApiError(
            400, "resize_mode 1 (to a width and height) is not available; send upscaling_resize", "resize_mode"
        )
    passes = max(1, math.ceil(math.log(req.upscaling_resize, sr.factor) - 1e-9))
    if passes > MAX_MAGNITUDE:
        raise ApiError(
            400, f"upscaling_resize {req.upscaling_resize:g} needs more than {MAX_MAGNITUDE} passes", "upscaling_resize"
        )
    data = _decoded(req.image, "image")
    svc = services()
    options = SuperResOptions(passes, "png", DEFAULT_QUALITY)
    record = submit_superres(svc, sr, data, options, check_image(data, passes, sr), header_webhook())
    _log_ignored(record["id"], req, {"upscaler_1"})
    done = wait_for_success(svc, record["id"], sr.request_timeout, "SR_REQUEST_TIMEOUT")
    scale = sr.factor**passes
    body = {
        "image": _b64(result_png(done)),
        "html_info": f"Postprocess upscale by: {scale}, Postprocess upscaler: {UPSCALER}",
    }
    return jsonify(body), 200, {"X-Job-Id": record["id"]}


@bp.get("/sd-models")
@documented(tags=("a1111",), ok={200: (None, "The modes as checkpoints: `title`, `model_name`, `hash`, `filename`.")})
def sd_models():
    """The modes, as A1111's checkpoints."""
    svc = services()
    hashes = _hashes()
    full = sees_everything()
    return jsonify(
        [
            {
                "title": _title(mode, hashes),
                "model_name": mode.name,
                "hash": hashes.get(mode.model),
                "sha256": None,
                "filename": str(mode.model_path) if full else mode.name,
                "config": None,
            }
            for mode in svc.modes.modes.values()
        ]
    )


@bp.get("/samplers")
@documented(tags=("a1111",), ok={200: (None, "The samplers a job may ask for, by A1111's names.")})
def samplers():
    """The samplers a job may ask for."""
    return jsonify([{"name": name, "aliases": [project], "options": {}} for project, name in A1111_NAMES.items()])


@bp.get("/upscalers")
@documented(tags=("a1111",), ok={200: (None, "`None` and the super-resolution model.")})
def upscalers():
    """The upscalers: none, or the super-resolution model."""
    sr = sr_settings()
    listed = [{"name": "None", "model_name": None, "model_path": None, "model_url": None, "scale": 1}]
    if sr.enabled:
        listed.append(
            {"name": UPSCALER, "model_name": UPSCALER, "model_path": None, "model_url": None, "scale": sr.factor}
        )
    return jsonify(listed)


@bp.get("/loras")
@documented(tags=("a1111",), ok={200: (None, "The LoRAs the modes name.")})
def loras():
    """The LoRAs the modes apply (a mode applies its own; a prompt's ``<lora:…>`` is not read)."""
    full = sees_everything()
    seen: dict[str, dict[str, Any]] = {}
    for mode in services().modes.modes.values():
        for lora in mode.loras:
            name = lora.adapter_name
            seen.setdefault(
                name, {"name": name, "alias": name, "path": str(lora.path) if full else None, "metadata": {}}
            )
    return jsonify(list(seen.values()))


@bp.get("/options")
@documented(
    tags=("a1111",), ok={200: (None, "`sd_model_checkpoint` (the caller's mode) and the settings A1111 clients read.")}
)
def get_options():
    """The caller's checkpoint (mode) and the settings A1111 clients read."""
    mode = _current_mode()
    hashes = _hashes()
    return jsonify(
        {
            "sd_model_checkpoint": _title(mode, hashes),
            "sd_checkpoint_hash": hashes.get(mode.model),
            "samples_format": "png",
        }
    )


@bp.post("/options")
@documented(
    tags=("a1111",),
    json=Options,
    ok={200: (None, "Set: `sd_model_checkpoint` picks the mode of the caller's jobs and queues a switch.")},
    errors={400: "A field is invalid.", 404: "Unknown `sd_model_checkpoint`."},
)
def set_options():
    """Set the caller's checkpoint (its jobs' mode) and queue a switch to it, as POST /api/modes/switch does
    (an operator's: a user key's setting picks the mode of its jobs only)."""
    req = _validated(Options, request.get_json(silent=True))
    svc = services()
    headers = {}
    if req.sd_model_checkpoint is not None:
        mode = _mode_of(req.sd_model_checkpoint)
        svc.redis.set(checkpoint_key(owner_name()), mode.name, ex=svc.settings.job_ttl)
        if sees_everything():
            record = svc.submit_switch(mode, header_webhook())
            headers["X-Job-Id"] = record["id"]
    ignored = sorted(req.model_extra or {})
    if ignored:
        current_app.logger.info("options: ignored settings the service does not use: %s", ignored)
    return jsonify(True), 200, headers


@bp.get("/progress")
@documented(tags=("a1111",), ok={200: (None, "The caller's running job: `progress`, `eta_relative`, `state`.")})
def progress():
    """The caller's latest job, in A1111's shape."""
    record = jobs.latest_job()
    running = record is not None and record["status"] not in TERMINAL
    step = (record or {}).get("progress") or {}
    done, total = step.get("step", 0), step.get("total", 0)
    fraction = done / total if running and record["status"] == RUNNING and total else 0.0
    return jsonify(
        {
            "progress": fraction,
            "eta_relative": 0.0,
            "state": {
                "skipped": False,
                "interrupted": bool(record and "cancel_requested" in record),
                "job": record["id"] if running else "",
                "job_count": 1 if running else 0,
                "job_timestamp": "0",
                "job_no": 0,
                "sampling_step": done,
                "sampling_steps": total,
            },
            "current_image": None,
            "textinfo": None,
        }
    )


@bp.post("/interrupt")
@documented(tags=("a1111",), ok={200: (None, "The caller's running job is canceled (nothing when none runs).")})
def interrupt():
    """Cancel the caller's latest job if it has not ended (as DELETE /api/jobs/<id>)."""
    record = jobs.latest_job()
    if record is not None and record["status"] not in TERMINAL:
        services().records.cancel(record["id"], record.get("waiting"))
        current_app.logger.info("job %s: canceled through /sdapi/v1/interrupt", record["id"])
        return jsonify({}), 200, {"X-Job-Id": record["id"]}
    return jsonify({})


def _generate(req: Generation, extra: dict[str, Any]):
    _refuse_unhonoured(req)
    mode = _mode_of(req.override_settings["sd_model_checkpoint"]) if _overrides_model(req) else _current_mode()
    body = {
        "mode": mode.name,
        "prompt": req.prompt,
        "negative_prompt": req.negative_prompt,
        "seed": None if req.seed < 0 else req.seed,
        "num_inference_steps": req.steps,
        "guidance_scale": req.cfg_scale,
        "size": _size(req, mode),
        "n": req.batch_size * req.n_iter,
        "sampler": _sampler(req),
        **control_fields(req.alwayson_scripts),
        **extra,
    }
    try:
        record = jobs.submit({k: v for k, v in body.items() if v is not None})
    except ApiError as exc:
        raise jobs.renamed(exc, NATIVE_NAMES) from None
    _log_ignored(record["id"], req, set())
    done = jobs.wait(record["id"])
    pictures = jobs.images(done)
    return (
        jsonify(
            {
                "images": [_b64(picture) for picture in pictures],
                "parameters": req.model_dump(),
                "info": json.dumps(_info(done, req, pictures)),
            }
        ),
        200,
        {"X-Job-Id": record["id"]},
    )


def _info(record: dict[str, Any], req: Generation, pictures: list[bytes]) -> dict[str, Any]:
    """A1111's ``info``: the settings that ran, every image's seed and infotext."""
    p, result = record["params"], record["result"]
    seeds = [image["seed"] for image in result["images"]]
    return {
        "prompt": p["prompt"],
        "all_prompts": [p["prompt"]] * len(seeds),
        "negative_prompt": p["negative_prompt"],
        "all_negative_prompts": [p["negative_prompt"]] * len(seeds),
        "seed": seeds[0],
        "all_seeds": seeds,
        "subseed": -1,
        "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0,
        "width": result["width"],
        "height": result["height"],
        "sampler_name": result["sampler"],
        "cfg_scale": p["guidance"],
        "steps": p["steps"],
        "batch_size": req.batch_size,
        "restore_faces": False,
        "sd_model_name": record["mode"],
        "sd_model_hash": result.get("model_hash"),
        "denoising_strength": p.get("strength"),
        "extra_generation_params": {},
        "index_of_first_image": 0,
        "infotexts": [_infotext(picture) for picture in pictures],
        "styles": [],
        "job_timestamp": "".join(ch for ch in record["created_at"] if ch.isdigit())[:14],
        "clip_skip": 1,
        "is_using_inpainting_conditioning": False,
    }


def _infotext(picture: bytes) -> str:
    with Image.open(io.BytesIO(picture)) as image:
        return image.text.get("parameters", "")


def _refuse_unhonoured(req: Generation) -> None:
    """400 for what the service cannot do, rather than an image that ignores it."""
    if req.enable_hr:
        raise ApiError(
            400, "enable_hr: hires fix is not available; upscale with /sdapi/v1/extra-single-image", "enable_hr"
        )
    if req.script_name:
        raise ApiError(400, f"script_name {req.script_name!r}: scripts are not available", "script_name")
    active = sorted(
        name
        for name, spec in (req.alwayson_scripts or {}).items()
        if _script_args(spec) not in _OFF and not is_controlnet(name)
    )
    if active:
        raise ApiError(
            400,
            f"alwayson_scripts {choices(map(repr, active))}: extensions other than ControlNet are not "
            "available on this service",
            "alwayson_scripts",
        )
    if req.subseed_strength:
        raise ApiError(400, "subseed_strength: variation seeds are not available; send 0", "subseed_strength")


def _script_args(spec: Any) -> Any:
    return spec.get("args", []) if isinstance(spec, dict) else spec


def _log_ignored(job_id: str, req: BaseModel, also: set[str]) -> None:
    sent = {**(req.model_extra or {}), **{name: getattr(req, name) for name in also}}
    ignored = sorted(name for name, value in sent.items() if not any(value is v or value == v for v in _NEUTRAL))
    if ignored:
        current_app.logger.info("job %s: ignored A1111 fields the service does not use: %s", job_id, ignored)


def _overrides_model(req: Generation) -> bool:
    return bool((req.override_settings or {}).get("sd_model_checkpoint"))


def _sampler(req: Generation) -> str | None:
    """The sampler name, with A1111 1.9's separate schedule folded in ("DPM++ 2M" + "Karras")."""
    name = req.sampler_name or req.sampler_index
    suffix = SCHEDULE_SUFFIXES.get((req.scheduler or "").lower(), "")
    if name and suffix and not name.endswith(suffix):
        return name + suffix
    return name


def _size(req: Generation, mode: Mode) -> str | None:
    if req.width is None and req.height is None:
        return None
    return f"{req.width or mode.default_width}x{req.height or mode.default_height}"


def _current_mode() -> Mode:
    """The caller's checkpoint (POST /sdapi/v1/options), else the default mode."""
    svc = services()
    modes = svc.modes
    chosen = svc.redis.get(checkpoint_key(owner_name()))
    name = chosen.decode() if chosen else modes.default_mode
    return modes.modes.get(name) or modes.modes[modes.default_mode]


def _mode_of(title: str) -> Mode:
    """The mode a checkpoint title names: ``demo``, ``demo [0123abcd45]`` or ``demo.safetensors``."""
    modes = services().modes.modes
    name = title.split(" [")[0].strip().removesuffix(".safetensors").removesuffix(".ckpt")
    if name not in modes:
        hashes = _hashes()
        titles = [_title(mode, hashes) for mode in modes.values()]
        raise ApiError(
            400,
            f"unknown sd_model_checkpoint {title!r}; the checkpoints are {choices(map(repr, titles))}",
            "sd_model_checkpoint",
        )
    return modes[name]


def _hashes() -> dict[str, str]:
    """Model name (under the model root) -> short hash, for the models a worker has run (jobs/model_hash.py)."""
    raw = services().redis.hgetall(MODEL_HASHES)
    return {path.decode(): value.decode() for path, value in raw.items()}


def _title(mode: Mode, hashes: dict[str, str]) -> str:
    short = hashes.get(mode.model)
    return f"{mode.name} [{short}]" if short else mode.name


def _decoded(text: str, field: str) -> bytes:
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{field} must be a base64 image (optionally a data: URL)", field) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _validated(model: type[Body], body: Any) -> Body:
    """The body as ``model``, or a 400 naming the first bad field."""
    try:
        return model.model_validate(json_object(body))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise ApiError(400, f"{field}: {error['msg']}" if field else error["msg"], field) from None
