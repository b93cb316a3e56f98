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
        ({"model": "../outside"}, "mode 'a': 'model' '../outside' escapes"),
        ({"model": "/etc"}, "must be relative"),
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


def test_loras_simple_and_full_forms(tmp_path):
    config = load_modes(
        write(
            tmp_path,
            {
                "model_root": "models",
                "lora_root": "loras",
                "modes": {
                    "a": {
                        "model": "m",
                        "loras": [
                            "style.safetensors",
                            {"path": "sub/9-detail.safetensors", "strength": 0.5},
                            {"path": "x.safetensors", "adapter_name": "xx", "strength": -1},
                        ],
                    }
                },
            },
        )
    )
    loras = config.modes["a"].loras
    assert [(lo.path, lo.strength, lo.adapter_name) for lo in loras] == [
        (tmp_path / "loras" / "style.safetensors", 1.0, "style"),
        (tmp_path / "loras" / "sub" / "9-detail.safetensors", 0.5, "lora_9_detail"),
        (tmp_path / "loras" / "x.safetensors", -1.0, "xx"),
    ]


def test_lora_root_defaults_to_model_root(tmp_path):
    config = load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": "m", "loras": ["l.st"]}}}))
    assert config.modes["a"].loras[0].path == tmp_path / "models" / "l.st"


@pytest.mark.parametrize(
    ("loras", "message"),
    [
        ("one.safetensors", "'loras' must be a list"),
        ([{"strength": 1}], r"loras\[0\]: give a file name"),
        ([{"path": "a", "weight": 1}], "unknown key 'weight'"),
        ([{"path": "a", "strength": "high"}], "'strength' must be a number"),
        ([{"path": "a", "adapter_name": "has space"}], "'adapter_name' 'has space'"),
        (["a.safetensors", {"path": "b", "adapter_name": "a"}], "adapter names must be unique"),
        (["../outside.safetensors"], "escapes"),
        (["/abs.safetensors"], "must be relative"),
    ],
)
def test_lora_errors_name_mode_and_entry(tmp_path, loras, message):
    with pytest.raises(ModesError, match=message):
        load_modes(write(tmp_path, {"modes": {"a": {"model": "m", "loras": loras}}}))


def test_symlink_escaping_the_root_is_refused(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "models" / "inside").mkdir()
    (tmp_path / "models" / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "models" / "ok-link").symlink_to(tmp_path / "models" / "inside")
    config = load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": "ok-link"}}}))
    assert config.modes["a"].model_path == tmp_path / "models" / "inside"
    with pytest.raises(ModesError, match="symlink leading outside"):
        load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": "link"}}}))


def test_a_component_linking_outside_the_root_is_refused(tmp_path):
    """A model folder inside model_root whose unet (or a file of it, through a linked folder) leads outside."""
    outside = tmp_path / "elsewhere" / "unet"
    outside.mkdir(parents=True)
    (outside / "diffusion_pytorch_model.safetensors").write_bytes(b"outside weights")
    models = tmp_path / "models"
    (models / "escaping").mkdir(parents=True)
    (models / "escaping" / "unet").symlink_to(outside)
    (models / "shared" / "unet").mkdir(parents=True)
    (models / "shared" / "unet" / "diffusion_pytorch_model.safetensors").symlink_to(
        outside / "diffusion_pytorch_model.safetensors"
    )
    (models / "relinked").mkdir()
    (models / "relinked" / "unet").symlink_to(models / "shared" / "unet")
    (models / "fine" / "unet").mkdir(parents=True)
    (models / "fine" / "model_index.json").write_text("{}")
    (models / "fine-link").symlink_to(models / "fine")
    for model in ("fine", "fine-link"):
        assert load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": model}}}))
    for model, link in (("escaping", "escaping/unet"), ("relinked", "shared/unet/diffusion_pytorch_model.safetensors")):
        with pytest.raises(ModesError, match=f"holds '{link}', a symlink to .*, outside"):
            load_modes(write(tmp_path, {"model_root": "models", "modes": {"a": {"model": model}}}))


def test_legacy_environment_becomes_one_mode(tmp_path):
    from modes.legacy import legacy_modes

    env = {
        "MODEL_ROOT": str(tmp_path),
        "MODEL": "sd15",
        "LORA_ROOT": str(tmp_path / "l"),
        "DEFAULT_SIZE": "768x512",
        "DEFAULT_STEPS": "8",
        "DEFAULT_GUIDANCE": "2.5",
    }
    config = legacy_modes(env, tmp_path / "absent.yaml")
    mode = config.modes["default"]
    assert config.default_mode == "default"
    assert (mode.model_path, mode.default_width, mode.default_height) == (tmp_path / "sd15", 768, 512)
    assert (mode.default_steps, mode.default_guidance) == (8, 2.5)
    assert legacy_modes({}, tmp_path / "absent.yaml") is None
    with pytest.raises(ModesError, match="DEFAULT_STEPS='many' is not a number"):
        legacy_modes({**env, "DEFAULT_STEPS": "many"}, tmp_path / "absent.yaml")


def test_modes_yaml_takes_precedence_over_the_environment(tmp_path, redis_server):
    from modes.registry import ModesRegistry

    env = {"MODEL": "legacy-model"}
    path = tmp_path / "modes.yaml"
    registry = ModesRegistry(redis_server.client(), path, env)
    assert set(registry.current().modes) == {"default"}
    write(tmp_path, {"modes": {"fromfile": {"model": "m"}}})
    assert registry.reload().error is None
    assert set(registry.current().modes) == {"fromfile"}


def test_modes_yaml_example_is_valid_and_complete():
    from config import ROOT

    config = load_modes(ROOT / "modes.yaml.example")
    keys = set().union(*(mode.describe() for mode in config.modes.values()))
    text = (ROOT / "modes.yaml.example").read_text()
    derived = {"name", "fixed_size", "inpainting"}  # not keys of the file (inpainting is read from the model)
    assert all(f"{key}:" in text for key in keys - derived), "a mode key is not documented in the example"
    assert "lora_root:" in text and "model_root:" in text and "default_mode:" in text
