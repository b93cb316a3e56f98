"""Cold mode switch on a worker backend for one model family's full-size architecture.

Builds the family at full size (random weights, fp32 diffusers folder under .cache/models,
once), drops the page cache when this process may, and loads it into a TorchBackend as a
mode switch does.  safetensors maps weights lazily, so the cold switch is the load plus
the first small call (64 px, 1 step) less the same call warm (as bench/modes.py measures
SD1.5).  SDXL needs about 15 GiB of RAM at the peak.

    python -m bench.cold_switch --family sdxl
"""

from __future__ import annotations

import argparse
import resource
import time

from bench.modes import drop_page_cache
from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
from tests.processes import ROOT


def small_call(backend, mode: ResolvedMode) -> float:
    """One 64x64, 1-step generation: touches every weight of the pipeline."""
    job = GenerateJob("bench", mode, GenerateParams("warm", "", 64, 64, 1, 1.0, 1))
    began = time.perf_counter()
    backend.generate(job, lambda step, total: None)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("sd15", "sd2", "sdxl"), default="sdxl")
    args = parser.parse_args()
    from workers.tiny_models import build
    from workers.torch_backend import TorchBackend

    path = ROOT / ".cache" / "models" / f"full-{args.family}"
    began = time.perf_counter()
    build(args.family, path, size="full")
    print(f"command: python -m bench.cold_switch --family {args.family}")
    print(f"built (or found) {path} in {time.perf_counter() - began:.0f} s")
    dropped = drop_page_cache()
    mode = ResolvedMode(name="cold", model_path=str(path), scheduler="lcm", backend="torch")
    backend = TorchBackend()
    load = backend.prepare(mode, "bench")
    first = small_call(backend, mode)
    warm = min(small_call(backend, mode) for _ in range(2))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    cache = "dropped" if dropped else "NOT dropped"
    print(
        f"cold switch, full-size {args.family} from disk (page cache {cache}): {load + first - warm:.2f} s "
        f"(load {load:.2f} s + first 64 px step {first:.2f} s - warm step {warm:.2f} s); peak RSS {peak:.1f} GiB"
    )


if __name__ == "__main__":
    main()
