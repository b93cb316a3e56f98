"""Modes: list them with the config version, reload modes.yaml, switch workers to a mode."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from api.caller import sees_everything
from api.errors import ApiError, error_body
from api.openapi import documented
from api.schemas import SwitchRequest, parse
from api.schemas.responses import Job, ModesListing, ReloadRefused
from api.services import services
from api.status import live_workers
from api.views import public_job
from api.webhook_fields import checked_webhook
from jobs.wording import choices
from modes import Mode

bp = Blueprint("modes", __name__)


def modes_view() -> dict:
    """The listing; a user key sees no file paths (model folders, LoRA files, the modes file)."""
    svc = services()
    modes = svc.modes
    full = sees_everything()
    config = svc.registry.status()
    return {
        "default_mode": modes.default_mode,
        "current_modes": sorted({w["mode"] for w in live_workers(svc) if w["mode"]}),
        "modes": [mode.describe() if full else public_mode(mode) for mode in modes.modes.values()],
        "config": config if full else public_config(config),
    }


def public_config(config: dict) -> dict:
    """The config's version without the modes file's path, nor a refused reload's message (it names paths)."""
    error = config["error"] and {
        "message": "the last reload was refused; an admin key sees why",
        "at": config["error"]["at"],
    }
    return {**config, "source": None, "error": error}


def public_mode(mode: Mode) -> dict:
    """A mode without paths: its model is named by the mode, a LoRA by its adapter name, a ControlNet by its name."""
    described = {k: v for k, v in mode.describe().items() if k != "model"}
    described["loras"] = [{k: v for k, v in lora.items() if k != "path"} for lora in described["loras"]]
    described["controlnets"] = [{k: v for k, v in c.items() if k != "path"} for c in described["controlnets"]]
    return described


@bp.get("/api/modes")
@documented(tags=("status",), ok={200: (ModesListing, "The modes; a `user` key sees no file paths.")})
def list_modes():
    """The modes, those live workers have loaded, and the config's version."""
    return jsonify(modes_view())


@bp.post("/api/modes/reload")
@documented(
    tags=("status",),
    ok={
        200: (ModesListing, "The new config is live."),
        422: (ReloadRefused, "The file was refused; the last good version keeps serving."),
    },
    errors={403: "A `user` key; this needs an `admin` key."},
)
def reload_modes():
    """Re-read the modes file; a broken one is refused and the last good config keeps serving."""
    result = services().registry.reload()
    if result.error:
        body = error_body(f"modes file not loaded, version {result.version} keeps serving: {result.error}")
        return jsonify({**body, **modes_view()}), 422
    return jsonify(modes_view())


@bp.post("/api/modes/switch")
@documented(
    tags=("status",),
    json=SwitchRequest,
    ok={202: (Job, "The switch job is queued; poll it (`Location`).")},
    errors={
        400: "The body is not a JSON object or `mode` is missing or not a name.",
        403: "A `user` key; this needs an `admin` key.",
        404: "No such mode.",
        429: "`QUEUE_MAX` jobs are waiting.",
    },
)
def switch_mode():
    """Queue a switch to a mode behind the jobs already queued for it; answers at once with the job to poll."""
    svc = services()
    body = parse(SwitchRequest, request.get_json(silent=True))
    modes = svc.modes.modes
    if body.mode not in modes:
        raise ApiError(404, f"unknown mode {body.mode!r}; valid modes are {choices(sorted(modes))}", "mode")
    record = svc.submit_switch(modes[body.mode], checked_webhook(body.webhook, body.webhook_events_filter))
    return jsonify(public_job(record)), 202, {"Location": url_for("jobs.get_job", job_id=record["id"])}
