"""Modes: a model plus defaults and limits, declared in modes.yaml."""

from modes.config import BACKENDS, SCHEDULERS, Mode, ModesConfig, ModesError, load_modes, parse_size

__all__ = ["BACKENDS", "SCHEDULERS", "Mode", "ModesConfig", "ModesError", "load_modes", "parse_size"]
