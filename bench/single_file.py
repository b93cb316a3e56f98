"""Full-size single-file checkpoints through the shipped configs: identical weights, load time.

For each family (default SD1.5 and SD2; full-size SDXL needs ~15 GiB to build),
builds the real architecture with random weights twice from the same seed: as a
diffusers folder (float32) and as an original-layout single file (float16, no
config sidecar, so the shipped config is what describes it).  Each is then loaded
in its own process with ``workers.loader.load_pipeline(dtype=float16)`` (the folder
cast on load), which hashes every tensor of every component and times the load.
The two must hash the same; the load times are one run each, cold page cache not
guaranteed.

    python -m bench.single_file [--families sd15 sd2] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import ROOT

MODELS = ROOT / ".cache" / "models"


def load_and_hash(path: str) -> dict:
    """In this process: load ``path`` as float16, return load seconds and a digest of every tensor."""
    import torch

    from workers.loader import load_pipeline

    began = time.perf_counter()
    pipe = load_pipeline(path, torch.float16)
    seconds = time.perf_counter() - began
    digests = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            digest = hashlib.sha256()
            for key, tensor in sorted(component.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
            digests[name] = digest.hexdigest()
    return {"class": type(pipe).__name__, "seconds": seconds, "digests": digests}


def measure(path: Path) -> dict:
    code = f"import json, bench.single_file as b; print(json.dumps(b.load_and_hash({str(path)!r})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def build(family: str, fmt: str) -> Path:
    name = f"bench-full-{family}" + (".safetensors" if fmt == "single" else "")
    code = f"from workers.tiny_models import build; build({family!r}, {str(MODELS / name)!r}, 'full', fmt={fmt!r})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return MODELS / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["sd15", "sd2"], choices=["sd15", "sd2", "sdxl"])
    parser.add_argument("--keep", action="store_true", help="keep the built models in .cache/models")
    args = parser.parse_args()
    print("python -m bench.single_file --families " + " ".join(args.families))
    for family in args.families:
        folder, single = build(family, "diffusers"), build(family, "single")
        size = single.stat().st_size / 2**30
        from_folder, from_file = measure(folder), measure(single)
        same = from_folder["digests"] == from_file["digests"]
        print(
            f"{family}: {from_file['class']}, single file {size:.2f} GiB; load as float16: folder "
            f"{from_folder['seconds']:.1f} s, single file {from_file['seconds']:.1f} s "
            f"({from_file['seconds'] / from_folder['seconds']:.2f}x); "
            f"{len(from_file['digests'])} components, weights identical: {same}"
        )
        if not args.keep:
            shutil.rmtree(folder)
            single.unlink()
        if not same:
            raise SystemExit(f"{family}: the single file's weights differ from the folder's")


if __name__ == "__main__":
    main()
