"""Response bodies: the job record, the modes listing, fleet status and errors.

They document what the views return (api/views.py, api/modes.py, api/status.py); the API does not
validate its own answers on the request path, and tests check real records against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.generation import SEED_MAX, OutFormat

Seed = Field(ge=0, le=SEED_MAX)


class _Open(BaseModel):
    """A response object: more properties may appear as the API grows."""

    model_config = ConfigDict(extra="allow")


class FieldErrorBody(BaseModel):
    field: str = Field(description="The request field at fault (`a.b` for a nested one).")
    message: str


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong; for a refused body, every field's message joined by '; '.")
    field: str | None = Field(None, description="The request field at fault, when there is one (the first).")
    errors: list[FieldErrorBody] | None = Field(None, description="A refused request body: each field at fault.")


class ErrorBody(BaseModel):
    """Every error has this body (but `GET /healthz`'s 503)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "message": "num_inference_steps must be between 1 and 50, got 80",
                        "field": "num_inference_steps",
                        "errors": [
                            {
                                "field": "num_inference_steps",
                                "message": "num_inference_steps must be between 1 and 50, got 80",
                            }
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorDetail


class SuperResOptionsView(BaseModel):
    """Post-generation super-resolution, present only when asked for."""

    magnitude: int
    out_format: OutFormat
    quality: int


class GenerationParams(BaseModel):
    """A generation job's resolved parameters, defaults applied."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int = Field(description="From `num_inference_steps`.")
    guidance: float = Field(description="From `guidance_scale`.")
    seed: int = Seed
    init_image: str | None = Field(None, description="The object-store key of the init image (img2img), else null.")
    strength: float | None = Field(None, description="The img2img strength, else null.")
    priority: int = Field(0, description="The job's priority (0 unless sent).")
    n: int = Field(1, ge=1, description="Images in the job, with seeds seed, seed+1, …")
    sampler: str | None = Field(None, description="The sampler asked for (our name), else null: the mode's.")
    mask_image: str | None = Field(None, description="Inpainting: the object-store key of the mask, else null.")
    mask_blur: int | None = Field(None, description="Inpainting: the mask's feathering in pixels, else null.")
    control_image: str | None = Field(None, description="ControlNet: the object-store key of the control image.")
    controlnet: str | None = Field(None, description="ControlNet: the mode's ControlNet that ran.")
    controlnet_conditioning_scale: float | None = None
    control_guidance_start: float | None = None
    control_guidance_end: float | None = None
    preprocessor: str | None = Field(None, description="ControlNet: `none` or `canny`.")
    superres: SuperResOptionsView | None = None


class SuperResParams(BaseModel):
    """A `superres` job's parameters."""

    model_config = ConfigDict(extra="forbid")

    magnitude: int
    out_format: OutFormat
    quality: int
    input_width: int
    input_height: int
    input_format: str = Field(description="The upload's format as decoded (PNG, JPEG, ...).")
    input_bytes: int


class CustomParams(BaseModel):
    """A `custom` job's parameters."""

    model_config = ConfigDict(extra="forbid")

    handler: str
    args: dict[str, Any]


class SwitchParams(BaseModel):
    """A `switch` job has no parameters: its mode is the record's `mode`."""

    model_config = ConfigDict(extra="forbid")


class SuperResResult(_Open):
    """What super-resolution did."""

    magnitude: int | None = None
    passes: int | None = None
    format: OutFormat | None = None
    engine: str | None = Field(None, description="The SR engine that ran (`onnx`, `torch`).")
    input_width: int | None = None
    input_height: int | None = None
    run_seconds: float | None = None


class ImageRef(BaseModel):
    seed: int = Field(ge=0, le=SEED_MAX)
    url: str = Field(
        description="Where the image is served: `/api/jobs/{job_id}/result` for the first, "
        "`/api/jobs/{job_id}/images/{index}` for the others."
    )


class JobResult(_Open):
    """Generation jobs have `seed`, `mode`, `sampler`, `width`, `height`, `url`; with post-generation
    super-resolution also `content_type` and `superres`. Super-resolution jobs have the SuperResResult
    fields at the top level and `content_type`. A switch job's result has `mode`, `worker` and
    `load_seconds`; a custom job's has `handler`, `worker` and `output`."""

    run_seconds: float | None = Field(
        None, description="Time on the worker, in seconds (of the whole call, for a batch)."
    )
    worker: str | None = Field(None, description="(switch, custom) The worker that ran the job.")
    load_seconds: float | None = Field(None, description="(switch) Seconds the load took; 0 when already loaded.")
    handler: str | None = Field(None, description="(custom) The handler that ran.")
    output: Any = Field(None, description="(custom) What the handler returned.")
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    mode: str | None = None
    width: int | None = None
    height: int | None = None
    sampler: str | None = Field(None, description="The sampler's name as A1111 writes it in PNG metadata.")
    batch: int | None = Field(None, ge=2, description="Present when the job ran in one pipeline call with others.")
    url: str | None = Field(None, description="The path of the image, `/api/jobs/{job_id}/result`.")
    content_type: Literal["image/png", "image/jpeg"] | None = Field(None, description="Absent means `image/png`.")
    superres: SuperResResult | None = None
    passes: int | None = Field(None, description="Super-resolution jobs only.")
    images: list[ImageRef] | None = Field(None, description="(generate) Every image of the job, in seed order.")
    model_hash: str | None = Field(None, description="(generate) A1111's short hash of the model file.")


class Progress(BaseModel):
    step: int
    total: int


class JobError(BaseModel):
    message: str = Field(description="Why it failed, or where a canceled job stopped.")


class Job(BaseModel):
    """A job's public record. `progress` appears once the worker reports a step, `result` only when
    `succeeded`, `error` only when `failed` or `canceled`, `cancel_requested` once a cancel reached a
    running job."""

    id: str = Field(json_schema_extra={"format": "uuid"})
    kind: Literal["generate", "switch", "custom", "superres"]
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    mode: str = Field(description="The mode's name (`superres` for super-resolution jobs, empty for custom jobs).")
    params: GenerationParams | SuperResParams | CustomParams | SwitchParams
    created_at: str = Field(description="UTC, ISO 8601 with milliseconds.", json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(None, description="When a worker last started the job; absent while queued.")
    finished_at: str | None = Field(None, description="When the job ended; absent until then.")
    attempts: int = Field(ge=0, description="How many times a worker started the job.")
    progress: Progress | None = None
    cancel_requested: Literal[True] | None = Field(
        None, description="A cancel reached the job while a worker ran it; it ends `canceled` after the current step."
    )
    result: JobResult | None = None
    error: JobError | None = None


class Lora(_Open):
    path: str | None = Field(None, description="The LoRA file's path (absent for a `user` key).")
    strength: float
    adapter_name: str


class ModeView(_Open):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    model: str | None = Field(
        None, description="The model folder's resolved path on the API host (absent for a `user` key)."
    )
    default_size: str
    default_steps: int
    default_guidance: float
    negative_prompt: str
    scheduler: str
    backend: Literal["torch", "onnx", "rknn"]
    max_size: int = Field(description="The largest width or height a request may ask for.")
    max_steps: int
    fixed_size: bool = Field(description="True when the mode runs at `default_size` only (backend `rknn`).")
    loras: list[Lora] = Field(description="LoRAs applied in order, with their strengths.")


class ReloadError(BaseModel):
    message: str
    at: float


class ConfigVersion(BaseModel):
    """The fleet's modes config version, shared by every API process and worker."""

    version: int
    digest: str | None = Field(description="Short hash of the published file content.")
    source: str | None = Field(description="The modes file the version was read from (null for a `user` key).")
    published_at: float | None = Field(description="Unix time the version was published.")
    error: ReloadError | None = Field(description="Why the last reload was refused, until a good reload clears it.")


class ModesListing(BaseModel):
    default_mode: str = Field(description="The mode used when a request names none.")
    current_modes: list[str] = Field(description="Modes loaded by live workers, sorted, without duplicates.")
    modes: list[ModeView]
    config: ConfigVersion


class ReloadRefused(ModesListing):
    """The modes file was refused; the last good version keeps serving."""

    error: ErrorDetail


class Worker(_Open):
    """A live worker's latest heartbeat (sent every 2 s, expires after 10 s)."""

    name: str = Field(description="The Celery worker's hostname.")
    backend: str
    serves: str = Field(description="The mode backend whose queues it consumes.")
    mode: str = Field(description="The mode whose model it has loaded; empty when none.")
    serving: str | None = Field(None, description="The mode whose queue the router keeps it on (ROUTER=affinity).")
    switches: int = Field(0, ge=0)
    state: Literal["busy", "idle"]
    job: str = Field(description="The jobs it is running, comma-separated; empty when idle.")
    queues: list[str]
    handlers: list[str] = []
    cached: list[str]
    memory: dict[str, Any] = Field(default_factory=dict, description="The worker's memory report.")
    host: str
    pid: int
    age_seconds: float


class QueueDepth(BaseModel):
    queue: str
    waiting: int


class SuperResStatus(BaseModel):
    enabled: bool
    queue: str
    waiting: int
    queue_max: int


class ModelsStatus(BaseModel):
    current_modes: list[str]
    queues: dict[str, QueueDepth]
    waiting_total: int
    queue_max: int
    superres: SuperResStatus
    workers: list[Worker]


class FleetMemory(BaseModel):
    total_bytes: int
    used_bytes: int
    free_bytes: int
    models_bytes: int
    cached_bytes: int
    devices: int


class WorkerMemory(BaseModel):
    name: str
    host: str
    mode: str
    state: str
    memory: dict[str, Any]


class Vram(BaseModel):
    fleet: FleetMemory
    workers: list[WorkerMemory]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    redis: str | None = Field(None, description="Why Redis is unreachable (503 only).")
