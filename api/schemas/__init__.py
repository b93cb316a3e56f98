"""Request and response bodies as pydantic models: the one source of validation, error messages and
the OpenAPI document (api/openapi.py).  A view validates its body with ``parse(Model, body)``."""

from api.schemas.generation import JobRequest
from api.schemas.parsing import json_object, parse
from api.schemas.requests import CustomJobRequest, SwitchRequest
from api.schemas.superres import SuperResUpload

__all__ = ["CustomJobRequest", "JobRequest", "SuperResUpload", "SwitchRequest", "json_object", "parse"]
