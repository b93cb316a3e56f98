"""Model, LoRA and ControlNet paths resolve on the worker host, against its own roots, with modes.yaml's
safety checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.messages import LoraRef, ResolvedMode
from modes import ModesConfig, ModesError, load_modes
from modes.roots import ModelRoots, message


def fleet_config(api_host: Path) -> ModesConfig:
    """The API host's config: models under api_host/models, LoRAs under api_host/loras, ControlNets under
    api_host/controlnets (the API host need not hold them)."""
    (api_host / "models" / "sd15").mkdir(parents=True)
    (api_host / "loras").mkdir()
    (api_host / "loras" / "style.safetensors").write_bytes(b"lora")
    data = {
        "model_root": "models",
        "lora_root": "loras",
        "controlnet_root": "controlnets",
        "modes": {
            "a": {
                "model": "sd15",
                "loras": [{"path": "style.safetensors", "strength": 0.5}],
                "controlnets": [{"path": "canny/sd15.safetensors", "name": "edges"}],
            }
        },
    }
    (api_host / "modes.yaml").write_text(yaml.safe_dump(data))
    return load_modes(api_host / "modes.yaml")


def worker_host(root: Path, model: str = "sd15", lora: str = "style.safetensors") -> Path:
    """A worker host's root holding the same files, in a folder of its own."""
    (root / model).mkdir(parents=True)
    (root / lora).write_bytes(b"lora")
    return root.resolve()


def test_the_message_names_files_relative_to_the_roots(tmp_path):
    config = fleet_config(tmp_path / "api")
    sent = message(config.modes["a"])
    assert sent.model_path == "sd15"
    assert sent.loras == (LoraRef("style.safetensors", 0.5, "style"),)
    assert str(tmp_path) not in repr(sent)


def test_each_worker_resolves_against_its_own_root(tmp_path):
    config = fleet_config(tmp_path / "api")
    sent = message(config.modes["a"])
    one, two = worker_host(tmp_path / "gpu" / "models"), worker_host(tmp_path / "npu" / "srv" / "sd")
    for root in (one, two):
        located = ModelRoots.from_env(lambda: config, {"MODEL_ROOT": str(root)}).locate(sent)
        assert located.model_path == str(root / "sd15")
        assert located.loras[0].path == str(root / "style.safetensors")  # LORA_ROOT defaults to MODEL_ROOT


def test_unset_roots_are_the_fleet_configs(tmp_path):
    """A single host: the worker finds the files where modes.yaml puts them, as before."""
    config = fleet_config(tmp_path / "api")
    located = ModelRoots.from_env(lambda: config, {}).locate(message(config.modes["a"]))
    assert located.model_path == str(config.modes["a"].model_path)
    assert located.loras[0].path == str(config.modes["a"].loras[0].path)


def test_lora_root_apart_from_model_root(tmp_path):
    config = fleet_config(tmp_path / "api")
    models = worker_host(tmp_path / "w" / "models", lora="unused.safetensors")
    loras = worker_host(tmp_path / "w" / "loras", model="unused")
    roots = ModelRoots.from_env(lambda: config, {"MODEL_ROOT": str(models), "LORA_ROOT": str(loras)})
    assert roots.locate(message(config.modes["a"])).loras[0].path == str(loras / "style.safetensors")


@pytest.mark.parametrize(
    ("model", "loras", "why"),
    [
        ("/etc", (), "must be relative"),
        ("../outside", (), "escapes"),
        ("link-out", (), "symlink leading outside"),
        ("holds-link", (), "a symlink to"),
        ("absent", (), "'absent' is not under"),
        ("sd15", (LoraRef("../x.safetensors", 1.0, "x"),), "escapes"),
        ("sd15", (LoraRef("gone.safetensors", 1.0, "x"),), "LoRA 'gone.safetensors' is not under"),
    ],
)
def test_unsafe_or_missing_files_are_refused(tmp_path, model, loras, why):
    root = worker_host(tmp_path / "models")
    outside = tmp_path / "outside"
    (outside / "unet").mkdir(parents=True)
    (root / "link-out").symlink_to(outside)
    (root / "holds-link").mkdir()
    (root / "holds-link" / "unet").symlink_to(outside / "unet")
    roots = ModelRoots(lambda: pytest.fail("the roots are set"), root, root)
    with pytest.raises(ModesError, match=why):
        roots.locate(ResolvedMode("a", model, "default", "torch", loras))


def test_lacking_names_the_modes_whose_files_this_host_lacks(tmp_path):
    config = fleet_config(tmp_path / "api")
    other = load_modes(
        _write(tmp_path / "api" / "more.yaml", {"model_root": "models", "modes": {"b": {"model": "sdxl"}}})
    )
    root = worker_host(tmp_path / "models")
    roots = ModelRoots(lambda: config, root, root)
    missing = roots.lacking([config.modes["a"], other.modes["b"]])
    assert list(missing) == ["b"]
    assert "'sdxl' is not under" in missing["b"]


def controlnet_host(root: Path, name: str = "canny/sd15.safetensors") -> Path:
    """A worker host's ControlNet root holding the fleet's ControlNet."""
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(b"controlnet")
    return root.resolve()


def test_a_controlnet_keeps_its_name_relative_to_the_controlnet_root(tmp_path):
    config = fleet_config(tmp_path / "api")
    controlnet = config.modes["a"].controlnets[0]
    assert config.controlnet_root == (tmp_path / "api" / "controlnets").resolve()
    assert controlnet.file == "canny/sd15.safetensors"
    assert controlnet.path == config.controlnet_root / "canny" / "sd15.safetensors"


def test_each_worker_resolves_a_controlnet_against_its_own_root(tmp_path):
    config = fleet_config(tmp_path / "api")
    gpu, npu = controlnet_host(tmp_path / "gpu" / "cn"), controlnet_host(tmp_path / "npu" / "srv" / "cn")
    for root in (gpu, npu):
        roots = ModelRoots.from_env(lambda: config, {"MODEL_ROOT": str(tmp_path), "CONTROLNET_ROOT": str(root)})
        assert roots.locate_controlnet("a", "canny/sd15.safetensors") == root / "canny" / "sd15.safetensors"


def test_the_controlnet_root_defaults_to_model_root_then_to_the_fleet_configs(tmp_path):
    config = fleet_config(tmp_path / "api")
    models = controlnet_host(tmp_path / "models")
    only_models = ModelRoots.from_env(lambda: config, {"MODEL_ROOT": str(models)})
    assert only_models.locate_controlnet("a", "canny/sd15.safetensors") == models / "canny" / "sd15.safetensors"
    controlnet_host(config.controlnet_root)
    unset = ModelRoots.from_env(lambda: config, {})
    assert unset.locate_controlnet("a", "canny/sd15.safetensors") == config.modes["a"].controlnets[0].path


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/passwd", "ControlNet '/etc/passwd' must be relative"),
        ("../outside/cn.safetensors", "escapes"),
        ("link-out.safetensors", "symlink leading outside"),
        ("holds-link", "a symlink to"),
        ("gone.safetensors", "mode 'a': ControlNet 'gone.safetensors' is not under .* on this worker host"),
    ],
)
def test_unsafe_or_missing_controlnets_are_refused(tmp_path, name, why):
    root = controlnet_host(tmp_path / "cn")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cn.safetensors").write_bytes(b"controlnet")
    (root / "link-out.safetensors").symlink_to(outside / "cn.safetensors")
    (root / "holds-link").mkdir()
    (root / "holds-link" / "diffusion_pytorch_model.safetensors").symlink_to(outside / "cn.safetensors")
    roots = ModelRoots(lambda: pytest.fail("the roots are set"), root, root, root)
    with pytest.raises(ModesError, match=why):
        roots.locate_controlnet("a", name)


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path
