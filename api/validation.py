"""Validate a generation request against its mode; errors name the field.

The rules live in the request model, api/schemas/generation.py (the OpenAPI document is generated
from it too); this module keeps the entry points the views and tests call.
"""

from __future__ import annotations

from typing import Any

from api.schemas.generation import DEFAULT_STRENGTH, PROMPT_MAX, SEED_MAX, JobRequest, parse_job_request
from api.schemas.parsing import json_object
from jobs.messages import GenerateParams
from modes import Mode, ModesConfig

FIELDS = tuple(JobRequest.model_fields)
__all__ = ["DEFAULT_STRENGTH", "FIELDS", "PROMPT_MAX", "SEED_MAX", "json_object", "parse_generation"]


def parse_generation(body: Any, modes: ModesConfig) -> tuple[Mode, GenerateParams, dict[str, bytes]]:
    """The mode, the resolved parameters, and the uploads to store before enqueueing (object key -> bytes)."""
    generation = parse_job_request(body, modes)
    return generation.mode, generation.params, generation.uploads
