"""Our names for the fields other image APIs (AUTOMATIC1111's, OpenAI's) call otherwise: an unknown
field with one of their names is answered with ours."""

from __future__ import annotations

_MODEL = "the model is chosen by mode (GET /api/modes lists them)"
_IMAGES = "it is called n here: the images in one job, with seeds seed, seed+1, ..."


def _called(ours: str) -> str:
    return f"it is called {ours} here"


# Their name -> (our field, which the request must accept for the hint to apply, and what to say).
ELSEWHERE = {
    "steps": ("num_inference_steps", _called("num_inference_steps")),
    "cfg_scale": ("guidance_scale", _called("guidance_scale")),
    "guidance": ("guidance_scale", _called("guidance_scale")),
    "width": ("size", "send size as 'WIDTHxHEIGHT', e.g. '512x768'"),
    "height": ("size", "send size as 'WIDTHxHEIGHT', e.g. '512x768'"),
    "negative": ("negative_prompt", _called("negative_prompt")),
    "init_images": ("init_image", "send one base64 PNG as init_image"),
    "image": ("init_image", "send a base64 PNG as init_image"),
    "denoising_strength": ("strength", _called("strength")),
    "sd_model_checkpoint": ("mode", _MODEL),
    "model": ("mode", _MODEL),
    "override_settings": ("mode", _MODEL),
    "sampler_name": ("sampler", _called("sampler")),
    "sampler_index": ("sampler", _called("sampler")),
    "scheduler": ("sampler", _called("sampler")),
    "n_iter": ("n", _IMAGES),
    "batch_size": ("n", _IMAGES),
    "enable_hr": ("superres", "upscaling is superres: true"),
    "hr_scale": ("superres_magnitude", "upscaling is superres_magnitude passes of x3"),
    "upscaling_resize": ("superres_magnitude", "upscaling is superres_magnitude passes of x3"),
    "scale": ("magnitude", "upscaling is magnitude passes of x3"),
    "format": ("out_format", _called("out_format")),
    "output_format": ("out_format", _called("out_format")),
}


def hint(field: str, accepted: list[str]) -> str:
    """What to send instead of ``field``, when another API names it so and this request has our field."""
    ours, text = ELSEWHERE.get(field, (None, ""))
    return f"{field!r}: {text}" if ours in accepted else ""
