"""Export an SD1.5 / LCM model (a diffusers folder or a single-file checkpoint) to the edge ONNX folder.

Command line::

    python -m workers.onnx_export --model DIFFUSERS_DIR_OR_CHECKPOINT.safetensors --out ONNX_DIR

It writes ``text_encoder/``, ``unet/`` and ``vae_decoder/`` with a
``model.onnx`` each (the UNet's weights in ``model.onnx.data`` when they pass
protobuf's 2 GB limit), the model's ``tokenizer/`` and ``scheduler/`` and an
``edge.json`` manifest (workers/edge/model_folder.py).  It uses torch's legacy
exporter (opset 17, dynamic batch, height and width): the dynamo exporter fails
on the UNet's dynamic shapes.  From a folder one component is in memory at a
time; the full-size UNet peaks at about twice its fp32 size (3.4 GB) while
exporting.  A single file is loaded whole, offline, by workers/loader.py (the
family's shipped config or the file's config sidecar), then exported component
by component, each freed once written.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.edge.model_folder import LATENT_CHANNELS, write_manifest
from workers.offline import force_offline

force_offline()

log = logging.getLogger(__name__)
OPSET = 17
DATA_FILE = "model.onnx.data"
# Trace the UNet at a latent size that is not a multiple of its 8x down-sampling: diffusers
# then passes explicit up-sampling sizes, which export as shape arithmetic and so stay dynamic.
TRACE_LATENT = (9, 10)


def export(model: Path, out: Path) -> Path:
    """Export ``model`` (a diffusers SD1.5 folder or .safetensors checkpoint) into ``out``, replacing what is there."""
    import torch

    model, out = Path(model), Path(out)
    source = _FolderSource(model) if model.is_dir() else _SingleFileSource(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        graphs: dict[str, Any] = {}
        with torch.no_grad():
            graphs["text_encoder"] = _export_text_encoder(source.take("text_encoder"), staging / "text_encoder")
            _consolidate(staging / "text_encoder")
            graphs["unet"] = _export_unet(source.take("unet"), staging / "unet", model)
            _consolidate(staging / "unet")
            graphs["vae_decoder"], scaling = _export_vae_decoder(source.take("vae"), staging / "vae_decoder")
            _consolidate(staging / "vae_decoder")
        source.write_tokenizer_and_scheduler(staging)
        write_manifest(
            staging,
            {"runtime": "onnx", "source": str(model.resolve()), "vae_scaling_factor": scaling, "graphs": graphs},
        )
        if out.exists():
            shutil.rmtree(out)
        staging.chmod(0o755)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


class _FolderSource:
    """A diffusers folder: each component loaded when it is taken."""

    def __init__(self, model_dir: Path) -> None:
        if not (model_dir / "model_index.json").exists():
            raise SystemExit(
                f"{model_dir} is not a diffusers folder (no model_index.json) nor a single-file .safetensors checkpoint"
            )
        self.root = model_dir

    def take(self, name: str) -> Any:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel

        model_class = {"text_encoder": CLIPTextModel, "unet": UNet2DConditionModel, "vae": AutoencoderKL}[name]
        return model_class.from_pretrained(self.root / name, local_files_only=True).eval()

    def write_tokenizer_and_scheduler(self, staging: Path) -> None:
        shutil.copytree(self.root / "tokenizer", staging / "tokenizer")
        (staging / "scheduler").mkdir()
        shutil.copy2(self.root / "scheduler" / "scheduler_config.json", staging / "scheduler")


class _SingleFileSource:
    """A single-file SD1.5 checkpoint, loaded once; each component is dropped when it is taken."""

    def __init__(self, path: Path) -> None:
        import torch

        from modes.families import UnsupportedCheckpoint, detect_family
        from workers.loader import ModelLoadError, load_single_file

        if path.suffix != ".safetensors" or not path.is_file():
            raise SystemExit(f"{path} is neither a diffusers folder nor a single-file .safetensors checkpoint")
        try:
            family = detect_family(path).name
            if family != "sd15":
                raise SystemExit(f"{path} is an {family} checkpoint; the edge backends run SD1.5 / LCM only")
            pipe = load_single_file(path, torch.float32)
        except (UnsupportedCheckpoint, ModelLoadError) as exc:
            raise SystemExit(str(exc)) from None
        self._components = {name: getattr(pipe, name).eval() for name in ("text_encoder", "unet", "vae")}
        self._tokenizer, self._scheduler = pipe.tokenizer, pipe.scheduler

    def take(self, name: str) -> Any:
        return self._components.pop(name)

    def write_tokenizer_and_scheduler(self, staging: Path) -> None:
        self._tokenizer.save_pretrained(staging / "tokenizer")
        self._scheduler.save_config(staging / "scheduler")


def _export_text_encoder(encoder: Any, folder: Path) -> dict[str, Any]:
    import torch

    length = encoder.config.max_position_embeddings

    class TextEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids):
            return self.encoder(input_ids=input_ids, return_dict=False)[0]

    ids = torch.zeros((1, length), dtype=torch.int32)
    inputs = [{"name": "input_ids", "dtype": "int32", "shape": ["batch", length]}]
    _export(TextEncoder(), (ids,), folder, inputs, ["last_hidden_state"], {"last_hidden_state": {0: "batch"}})
    return {"inputs": inputs, "outputs": ["last_hidden_state"]}


def _export_unet(unet: Any, folder: Path, model: Path) -> dict[str, Any]:
    import torch

    config = unet.config
    width = config.cross_attention_dim
    cond_dim = config.time_cond_proj_dim
    channels = config.in_channels
    if channels != LATENT_CHANNELS:
        raise SystemExit(f"{model}: the UNet takes {channels} channels; only text-to-image SD1.5 (4) exports")

    class Unet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
            return self.unet(
                sample,
                timestep,
                encoder_hidden_states=encoder_hidden_states,
                timestep_cond=timestep_cond,
                return_dict=False,
            )[0]

    args = [
        torch.randn(1, channels, *TRACE_LATENT),
        torch.tensor([999], dtype=torch.int64),
        torch.randn(1, 77, width),
    ]
    inputs = [
        {"name": "sample", "dtype": "float32", "shape": ["batch", channels, "height", "width"]},
        {"name": "timestep", "dtype": "int64", "shape": [1]},
        {"name": "encoder_hidden_states", "dtype": "float32", "shape": ["batch", 77, width]},
    ]
    if cond_dim:
        args.append(torch.randn(1, cond_dim))
        inputs.append({"name": "timestep_cond", "dtype": "float32", "shape": ["batch", cond_dim]})
    outputs = {"out_sample": {0: "batch", 2: "height", 3: "width"}}
    _export(Unet(), tuple(args), folder, inputs, list(outputs), outputs)
    return {"inputs": inputs, "outputs": list(outputs)}


def _export_vae_decoder(vae: Any, folder: Path) -> tuple[dict[str, Any], float]:
    import torch

    channels = vae.config.latent_channels

    class VaeDecoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vae = vae

        def forward(self, latent_sample):
            return self.vae.decode(latent_sample, return_dict=False)[0]

    inputs = [{"name": "latent_sample", "dtype": "float32", "shape": ["batch", channels, "height", "width"]}]
    outputs = {"sample": {0: "batch", 2: "image_height", 3: "image_width"}}
    _export(VaeDecoder(), (torch.randn(1, channels, 8, 8),), folder, inputs, list(outputs), outputs)
    return {"inputs": inputs, "outputs": list(outputs)}, float(vae.config.scaling_factor)


def _export(
    module: Callable,
    args: tuple,
    folder: Path,
    inputs: list[dict[str, Any]],
    output_names: list[str],
    output_axes: dict[str, dict[int, str]],
) -> None:
    """Legacy-export ``module`` into ``folder/raw/``; ``_consolidate`` finishes it once the module is freed."""
    import torch

    axes = {spec["name"]: {i: dim for i, dim in enumerate(spec["shape"]) if isinstance(dim, str)} for spec in inputs}
    axes.update(output_axes)
    raw = folder / "raw"
    raw.mkdir(parents=True)
    log.info("exporting %s", folder.name)
    with warnings.catch_warnings():
        # The tracer warns about branches on batch >= 64 and on > 2**31 elements, neither of which we run.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        _trace(module, args, raw / "model.onnx", inputs, output_names, axes)


def _trace(
    module: Callable,
    args: tuple,
    path: Path,
    inputs: list[dict[str, Any]],
    output_names: list[str],
    axes: dict[str, dict[int, str]],
) -> None:
    import torch

    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=[spec["name"] for spec in inputs],
        output_names=output_names,
        dynamic_axes={name: dims for name, dims in axes.items() if dims},
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )


def _consolidate(folder: Path) -> None:
    """Move the exported graph from ``folder/raw`` into ``folder``; tensors the exporter wrote as separate
    files (graphs over 2 GB) go into one ``model.onnx.data``.  Called once the torch module is freed."""
    gc.collect()
    raw = folder / "raw"
    files = list(raw.iterdir())
    if len(files) == 1:
        files[0].rename(folder / "model.onnx")
        raw.rmdir()
        return
    import onnx

    model = onnx.load(str(raw / "model.onnx"), load_external_data=True)
    onnx.save_model(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=DATA_FILE,
        size_threshold=1024,
    )
    del model
    shutil.rmtree(raw)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, required=True, help="a diffusers SD1.5 / LCM folder or single-file .safetensors"
    )
    parser.add_argument("--out", type=Path, required=True, help="the ONNX folder to write")
    args = parser.parse_args()
    out = export(args.model, args.out)
    print(json.dumps({"out": str(out)}))


if __name__ == "__main__":
    main()
