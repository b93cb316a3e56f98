"""modes.yaml parsing: defaults, limits, and errors that name the mode and field."""

from __future__ import annotations

import pytest
import yaml

from modes import ModesError, load_modes


def write(tmp_path, data) -> object:
    path = tmp_path / "modes.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_defaults_and_resolution(tmp_path):
    config = load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": "sd15"}}}))
    mode = config.modes["a"]
    assert config.default_mode == "a"
    assert mode.model_path == tmp_path / "models" / "sd15"
    assert (mode.default_width, mode.default_height, mode.default_steps, mode.default_guidance) == (512, 512, 20, 7.5)
    assert (mode.scheduler, mode.backend, mode.max_size, mode.max_steps) == ("default", "torch", 1024, 150)


def test_lcm_caps_steps_at_50(tmp_path):
    config = load_modes(write(tmp_path, {"modes": {"a": {"model": "m", "scheduler": "lcm", "default_steps": 4}}}))
    assert config.modes["a"].max_steps == 50
    with pytest.raises(ModesError, match="'max_steps' must be between 1 and 50"):
        load_modes(write(tmp_path, {"modes": {"a": {"model": "m", "scheduler": "lcm", "max_steps": 80}}}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"default_size": "512"}, "mode 'a': 'default_size'"),
        ({"default_size": "100x100"}, "mode 'a': 'default_size' must be multiples of 8"),
        ({"default_steps": 0}, "mode 'a': 'default_steps' must be between 1 and 150"),
        ({"default_steps": "4"}, "mode 'a': 'default_steps' must be a whole number"),
        ({"default_guidance": 31}, "mode 'a': 'default_guidance' must be between"),
        ({"scheduler": "magic"}, "mode 'a': 'scheduler' 'magic' is not one of"),
        ({"backend": "tpu"}, "mode 'a': 'backend' 'tpu' is not one of"),
        ({"model": "../outside"}, "mode 'a': 'model' '../outside' escapes model_root"),
        ({"model": "/etc"}, "escapes model_root"),
        ({"model": ""}, "mode 'a': 'model' must name a model"),
    ],
)
def test_errors_name_mode_and_field(tmp_path, spec, message):
    with pytest.raises(ModesError, match=message.replace("(", r"\(")):
        load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": "m", **spec}}}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modes: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("modes: {}", "'modes' must map at least one mode"),
        ("default_mode: b\nmodes: {a: {model: m}}", "default_mode 'b' is not one of"),
        ("modes: {'bad name': {model: m}}", "names use letters"),
    ],
)
def test_file_level_errors(tmp_path, text, message):
    with pytest.raises(ModesError, match=message):
        load_modes(write(tmp_path, text))


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ModesError, match="set MODES_FILE"):
        load_modes(tmp_path / "absent.yaml")


def test_shipped_modes_yaml_is_valid():
    from config import ROOT

    assert load_modes(ROOT / "modes.yaml").default_mode == "demo"
