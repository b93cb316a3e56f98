"""Keep Hugging Face libraries off the network: nothing here may reach a hub."""

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DIFFUSERS_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
}


def force_offline() -> None:
    """Set the offline switches; call before importing diffusers or transformers."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
