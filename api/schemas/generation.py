"""The native generation request: the body of ``POST /api/jobs`` and ``POST /generate``.

Validated against the fleet's modes: the ModesConfig is the validation context, so a size or a step
count is checked against the mode the request names, in the same pass as every other field.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo, WithJsonSchema, field_validator

from api.control_fields import FIELDS as CONTROL_FIELDS
from api.control_fields import MAX_SCALE as MAX_CONTROL_SCALE
from api.control_fields import parse_control
from api.errors import ApiError
from api.init_image import MAX_BYTES, MAX_PIXELS, MAX_SIDE, InitImage, parse_init_image
from api.schemas.parsing import field_error, parse
from api.schemas.webhooks import WebhookEvents, WebhookUrl
from jobs.messages import GenerateParams
from jobs.samplers import EDGE_SAMPLERS, accepted_sampler_names, resolve_sampler
from jobs.superres import MAX_MAGNITUDE, SuperResOptions
from jobs.wording import choices
from modes import Mode, ModesConfig, parse_size
from modes.config import EDGE_BACKENDS, LCM_MAX_STEPS, MAX_GUIDANCE

SEED_MAX = 2**32 - 1
PROMPT_MAX = 4000
MAX_PRIORITY = 10
MAX_STEPS = 150
N_MAX = 10  # images per job, as OpenAI's Images API bounds n
# img2img default: a light pass, as an SDXL refiner is used; raise it for stronger changes.
DEFAULT_STRENGTH = 0.3
# Inpainting defaults: repaint the masked area mostly anew (as A1111's 0.75), with a feathered seam.
DEFAULT_INPAINT_STRENGTH = 0.75
DEFAULT_MASK_BLUR = 4
MAX_MASK_BLUR = 64
DEFAULT_MAGNITUDE, DEFAULT_FORMAT, DEFAULT_QUALITY = 1, "png", 95
FORMAT_ALIASES = {"jpg": "jpeg"}
OutFormat = Literal["png", "jpeg"]


def _image(field: str) -> Any:
    """A validator decoding a base64 PNG field as init_image is (api/init_image.py), naming ``field``."""

    def decode(value: Any) -> InitImage:
        try:
            return parse_init_image(value, field)
        except ApiError as exc:
            raise field_error(exc.message) from None

    return decode


def _image_field(field: str) -> Any:
    return Annotated[
        InitImage,
        PlainValidator(_image(field)),
        WithJsonSchema(
            {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png", "minLength": 1}
        ),
    ]


InitImageField = _image_field("init_image")
MaskImageField = _image_field("mask_image")
ControlImageField = _image_field("control_image")


def out_format(value: Any) -> Any:
    """``jpg`` and any case are accepted for the two formats."""
    if isinstance(value, str):
        value = value.lower()
        return FORMAT_ALIASES.get(value, value)
    return value


# Field -> the field it applies with.
NEEDS = {
    "strength": "init_image",
    "mask_image": "init_image",
    "mask_blur": "mask_image",
    "webhook_events_filter": "webhook",
    **{field: "control_image" for field in CONTROL_FIELDS if field != "control_image"},
}


def _needs(field: str, other: str) -> dict[str, Any]:
    """JSON Schema: ``field``, when set and not null, needs ``other`` set and not null."""
    present = {"not": {"type": "null"}}
    return {
        "if": {"required": [field], "properties": {field: present}},
        "then": {"required": [other], "properties": {other: present}},
    }


class JobRequest(BaseModel):
    """A generation request. Only `prompt` is required; omitted or null fields take the mode's defaults
    from modes.yaml (`default_size`, `default_steps`, `default_guidance`, `negative_prompt`).
    Unknown fields are refused with 400, naming the accepted ones."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            # A field that needs another (the API answers 400 otherwise), when it is not null.
            "allOf": [_needs(field, other) for field, other in NEEDS.items()],
            "examples": [
                {
                    "prompt": "a lighthouse at dusk, oil painting",
                    "mode": "demo",
                    "size": "512x512",
                    "num_inference_steps": 4,
                    "guidance_scale": 1.0,
                    "seed": 42,
                }
            ],
        },
    )

    mode: str | None = Field(
        None,
        min_length=1,
        description="A mode name from `GET /api/modes`; omitted or null: the default mode. Unknown: 404.",
        examples=["demo"],
    )
    prompt: str = Field(max_length=PROMPT_MAX, description="What to draw.")
    negative_prompt: str | None = Field(
        None, max_length=PROMPT_MAX, description="What to keep out. Omitted: the mode's `negative_prompt`."
    )
    size: str | None = Field(
        None,
        description="`WIDTHxHEIGHT` in pixels: positive multiples of 8, at most the mode's `max_size` a side. "
        "Omitted or null: the mode's `default_size`. A mode with `fixed_size` (backend `rknn`) takes only its "
        "`default_size`.",
        json_schema_extra={"pattern": r"^\d+x\d+$"},
        examples=["512x768"],
    )
    sampler: str | None = Field(
        None,
        min_length=1,
        description="A scheduler in place of the mode's, by our name or AUTOMATIC1111's, any case: "
        f"{', '.join(accepted_sampler_names())}. The image's infotext names the one used. onnx and rknn "
        "modes run LCM only. Omitted: the mode's `scheduler`.",
        examples=["Euler a"],
    )
    num_inference_steps: int | None = Field(
        None,
        ge=1,
        le=MAX_STEPS,
        description="Denoising steps, at most the mode's `max_steps` (50 for `lcm` modes). "
        "Omitted: the mode's `default_steps`.",
    )
    guidance_scale: float | None = Field(
        None,
        ge=0.0,
        le=MAX_GUIDANCE,
        description="Classifier-free guidance scale. Omitted: the mode's `default_guidance`.",
    )
    n: int | None = Field(
        None,
        ge=1,
        le=N_MAX,
        description="Images in the job (default 1), with seeds `seed`, `seed`+1, …, so each image reproduces "
        "alone; `result.images` lists them. With `superres`, 1 only.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=SEED_MAX,
        description="Omitted or null: a random seed, recorded in the job's `params.seed` and `result.seed` "
        "so the image can be replayed.",
    )
    priority: int | None = Field(
        None,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Order among the waiting jobs of the same mode (default 0): a job with priority p goes "
        "before the jobs submitted up to p x `PRIORITY_AGING` seconds before it, never before older ones.",
    )
    init_image: InitImageField | None = Field(
        None,
        description=f"img2img: a PNG (at most {MAX_BYTES // 2**20} MiB, each side at most {MAX_SIDE} px, "
        f"{MAX_PIXELS} pixels in all), base64-encoded, optionally as a `data:image/png;base64,` URL. "
        "It is resized to the job's `size` and denoised from `strength` of the way. Torch modes only. "
        "Stored under `inputs/<sha256>.png` (recorded in `params.init_image`), never sent through the broker.",
    )
    mask_image: MaskImageField | None = Field(
        None,
        validate_default=True,
        description="Inpainting: a PNG mask, white where `init_image` is repainted, checked as `init_image` is "
        "and resized to the job's size. Needs `init_image`. A mode whose model is an inpainting model "
        "(`inpainting: true` in `GET /api/modes`) takes inpainting jobs only.",
    )
    mask_blur: int | None = Field(
        None,
        ge=0,
        le=MAX_MASK_BLUR,
        description=f"Inpainting only: the mask's feathering in pixels (default {DEFAULT_MASK_BLUR}).",
    )
    strength: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        validate_default=True,
        description=f"img2img and inpainting only (400 without `init_image`): how far to move from the init image. "
        f"Omitted: {DEFAULT_STRENGTH} ({DEFAULT_INPAINT_STRENGTH} for inpainting). The worker runs "
        "`int(num_inference_steps * strength)` steps; a value that makes that 0 is a 400.",
    )
    control_image: ControlImageField | None = Field(
        None,
        description="ControlNet: a PNG that steers the composition (edges, pose, depth…), checked as "
        "`init_image` is. Text-to-image on torch modes that list ControlNets; the other ControlNet fields "
        "need it.",
    )
    controlnet: str | None = Field(
        None, min_length=1, description="Which of the mode's `controlnets` (default: its first)."
    )
    controlnet_conditioning_scale: float | None = Field(
        None, ge=0.0, le=MAX_CONTROL_SCALE, description="How strongly it steers (default: the ControlNet's `scale`)."
    )
    control_guidance_start: float | None = Field(
        None, ge=0.0, le=1.0, description="The fraction of the steps where it starts steering (default 0)."
    )
    control_guidance_end: float | None = Field(
        None, ge=0.0, le=1.0, description="The fraction of the steps where it stops (default 1); above the start."
    )
    preprocessor: Literal["none", "canny"] | None = Field(
        None, description="`canny`: the control image's edges are computed first (default `none`)."
    )
    webhook: WebhookUrl = None
    webhook_events_filter: WebhookEvents = None
    superres: bool | None = Field(
        None,
        description="Upscale the generated image on a super-resolution worker; the other `superres_*` "
        "fields take effect only when this is true. 503 when `SR_ENABLED=0`.",
    )
    superres_magnitude: int | None = Field(
        None,
        ge=1,
        le=MAX_MAGNITUDE,
        description=f"Passes of x3 each (default {DEFAULT_MAGNITUDE}). Width x height x 9^magnitude must not "
        "exceed `SR_MAX_PIXELS`.",
    )
    superres_format: OutFormat | None = Field(None, description=f"Default {DEFAULT_FORMAT}; `jpg` means jpeg.")
    superres_quality: int | None = Field(None, ge=1, le=100, description=f"JPEG quality (default {DEFAULT_QUALITY}).")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, name: str | None, info: ValidationInfo) -> str | None:
        modes: ModesConfig = info.context
        if name is not None and name not in modes.modes:
            raise field_error(f"unknown mode {name!r}; valid modes are {choices(sorted(modes.modes))}", 404)
        return name

    @field_validator("size")
    @classmethod
    def _size_fits_mode(cls, raw: str | None, info: ValidationInfo) -> str | None:
        if raw is None:
            return None
        try:
            width, height = parse_size(raw)
        except ValueError as exc:
            raise field_error(str(exc)) from None
        if width % 8 or height % 8 or width == 0 or height == 0:
            raise field_error(f"size {raw!r}: width and height must be positive multiples of 8")
        mode = mode_of(info)
        if mode is None:
            return raw
        if max(width, height) > mode.max_size:
            raise field_error(f"size {raw!r}: mode {mode.name!r} allows at most {mode.max_size} pixels a side")
        if mode.fixed_size and (width, height) != (mode.default_width, mode.default_height):
            only = f"{mode.default_width}x{mode.default_height}"
            raise field_error(
                f"size {raw!r}: mode {mode.name!r} runs a model converted for {only} only; send {only} or omit size"
            )
        return raw

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, raw: str | None, info: ValidationInfo) -> str | None:
        """The project name of the requested sampler."""
        if raw is None:
            return None
        name = resolve_sampler(raw)
        if name is None:
            raise field_error(
                f"unknown sampler {raw!r}; accepted samplers are {choices(map(repr, accepted_sampler_names()))}"
            )
        mode = mode_of(info)
        if mode is not None and mode.backend in EDGE_BACKENDS and name not in EDGE_SAMPLERS:
            raise field_error(f"mode {mode.name!r} runs on the {mode.backend} backend, whose pipeline runs LCM only")
        return name

    @field_validator("num_inference_steps")
    @classmethod
    def _steps_fit_mode(cls, steps: int | None, info: ValidationInfo) -> int | None:
        mode = mode_of(info)
        if steps is None or mode is None:
            return steps
        lcm = (info.data.get("sampler") or mode.scheduler) == "lcm"
        most = min(mode.max_steps, LCM_MAX_STEPS) if lcm else mode.max_steps
        if steps > most:
            raise field_error(f"num_inference_steps must be between 1 and {most}, got {steps}")
        return steps

    @field_validator("seed")
    @classmethod
    def _seeds_fit(cls, seed: int | None, info: ValidationInfo) -> int | None:
        """A job of n images takes seeds seed .. seed + n - 1: the last must still be a seed."""
        n = info.data.get("n") or 1
        if seed is not None and seed > SEED_MAX + 1 - n:
            raise field_error(f"seed must be between 0 and {SEED_MAX + 1 - n} for a job of {n} images, got {seed}")
        return seed

    @field_validator("init_image")
    @classmethod
    def _img2img_backend(cls, init: InitImage | None, info: ValidationInfo) -> InitImage | None:
        mode = mode_of(info)
        if init is not None and mode is not None and mode.backend != "torch":
            raise field_error(
                f"mode {mode.name!r} runs on the {mode.backend} backend, which has no img2img; use a torch mode"
            )
        return init

    @field_validator("mask_image")
    @classmethod
    def _mask_fits(cls, mask: InitImage | None, info: ValidationInfo) -> InitImage | None:
        """A mask needs an init image; an inpainting model's mode takes inpainting jobs only."""
        mode = mode_of(info)
        if mask is None and mode is not None and mode.inpainting:
            raise field_error(
                f"mode {mode.name!r} runs an inpainting model (9 input channels), which serves inpainting jobs "
                "only: send init_image and mask_image (white = repaint)"
            )
        if mask is not None and info.data.get("init_image", mask) is None:
            raise field_error("mask_image needs an init_image: the image whose white-masked area is repainted")
        return mask

    @field_validator("mask_blur")
    @classmethod
    def _blur_needs_mask(cls, blur: int | None, info: ValidationInfo) -> int | None:
        if blur is not None and info.data.get("mask_image", True) is None:
            raise field_error("mask_blur applies to inpainting only: send it with a mask_image")
        return blur

    @field_validator("strength")
    @classmethod
    def _strength_denoises(cls, strength: float | None, info: ValidationInfo) -> float | None:
        if "init_image" not in info.data:  # init_image was refused: its error says why
            return strength
        if info.data["init_image"] is None:
            if strength is not None:
                raise field_error("strength applies to img2img only: send it with an init_image")
            return None
        default = DEFAULT_INPAINT_STRENGTH if info.data.get("mask_image") is not None else DEFAULT_STRENGTH
        strength = default if strength is None else strength
        mode = mode_of(info)
        if mode is None or "num_inference_steps" not in info.data:
            return strength
        steps = info.data["num_inference_steps"] or mode.default_steps
        # The pipeline runs int(steps * strength) of the steps.
        if int(steps * strength) < 1:
            raise field_error(
                f"strength {strength} of {steps} steps runs no denoising step; raise strength or num_inference_steps"
            )
        return strength

    @field_validator("superres", mode="before")
    @classmethod
    def _zero_or_one(cls, value: Any) -> Any:
        return bool(value) if type(value) is int and value in (0, 1) else value

    @field_validator("superres_format", mode="before")
    @classmethod
    def _format_alias(cls, value: Any) -> Any:
        return out_format(value)

    def superres_options(self) -> SuperResOptions | None:
        """Post-generation SR options, or None when ``superres`` is absent or false."""
        if not self.superres:
            return None
        return SuperResOptions(
            magnitude=self.superres_magnitude or DEFAULT_MAGNITUDE,
            out_format=self.superres_format or DEFAULT_FORMAT,
            quality=self.superres_quality or DEFAULT_QUALITY,
        )


def mode_of(info: ValidationInfo) -> Mode | None:
    """The mode the request names (validated before the fields that depend on it), or None when it was refused."""
    if "mode" not in info.data:
        return None
    modes: ModesConfig = info.context
    return modes.modes[info.data["mode"] or modes.default_mode]


@dataclass(frozen=True)
class Generation:
    """A validated request, resolved against its mode: what the job path needs."""

    mode: Mode
    params: GenerateParams
    uploads: dict[str, bytes]  # object key -> bytes, stored before the job is enqueued
    superres: SuperResOptions | None


def parse_job_request(body: Any, modes: ModesConfig) -> Generation:
    """The request validated against ``modes`` with the mode's defaults applied, or an ApiError naming every field."""
    request = parse(JobRequest, body, modes)
    mode = modes.modes[request.mode or modes.default_mode]
    width, height = parse_size(request.size) if request.size else (mode.default_width, mode.default_height)
    init, mask = request.init_image, request.mask_image
    control, control_image = parse_control(request, mode, init)
    n = request.n or 1
    params = GenerateParams(
        prompt=request.prompt,
        negative_prompt=mode.negative_prompt if request.negative_prompt is None else request.negative_prompt,
        width=width,
        height=height,
        steps=request.num_inference_steps or mode.default_steps,
        guidance=float(mode.default_guidance if request.guidance_scale is None else request.guidance_scale),
        seed=secrets.randbelow(SEED_MAX + 2 - n) if request.seed is None else request.seed,
        init_image=init.key if init else None,
        strength=request.strength,
        priority=request.priority or 0,
        n=n,
        sampler=request.sampler,
        mask_image=mask.key if mask else None,
        mask_blur=(DEFAULT_MASK_BLUR if request.mask_blur is None else request.mask_blur) if mask else None,
        **control,
    )
    uploads = {image.key: image.data for image in (init, mask, control_image) if image}
    return Generation(mode, params, uploads, request.superres_options())
