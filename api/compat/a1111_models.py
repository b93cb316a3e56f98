"""Request bodies of AUTOMATIC1111's ``/sdapi/v1`` routes, as this service reads them.

Fields A1111 accepts that the service has no use for (``restore_faces``, ``tiling``,
``eta``, ``styles``…) are allowed as extras and logged with the job; the fields named here
are used, or refused when sent with a meaning the service cannot honour.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Generation(BaseModel):
    """What txt2img and img2img share."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str | None = None
    seed: int = -1
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    sampler_name: str | None = None
    sampler_index: str | None = None
    scheduler: str | None = None
    batch_size: int = Field(1, ge=1)
    n_iter: int = Field(1, ge=1)
    override_settings: dict[str, Any] | None = None
    # Refused when used: the service cannot honour them (api/compat/a1111.py says why).
    enable_hr: bool = False
    script_name: str | None = None
    alwayson_scripts: dict[str, Any] | None = None
    subseed_strength: float = 0.0


class Txt2Img(Generation):
    pass


class Img2Img(Generation):
    init_images: list[str] = Field(min_length=1)
    denoising_strength: float = 0.75
    # Inpainting: white repaints (black with inpainting_mask_invert = 1), feathered by mask_blur pixels.
    mask: str | None = None
    mask_blur: int = Field(4, ge=0, le=64)
    inpainting_mask_invert: int = Field(0, ge=0, le=1)


class ExtraSingleImage(BaseModel):
    model_config = ConfigDict(extra="allow")

    image: str
    resize_mode: int = 0
    upscaling_resize: float = Field(2.0, gt=0)
    upscaler_1: str | None = None


class Options(BaseModel):
    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = None
