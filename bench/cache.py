"""A switch back to a model from the worker's host cache against a cold load, measured in one run.

Two full-size SD1.5 architectures (random weights, fp32, CPU; A and B, different seeds) on one
TorchBackend, as a worker runs them:

- cold switch: A from disk, the OS page cache dropped first when this process may do so
  (the output says whether it was): ``prepare`` + reading every weight once - the same
  read warm, since safetensors maps weights lazily and the first use still reads them.
  bench/modes.py uses a 64 px pipeline call for that read; on this shared 2-core machine
  its run time varies by seconds between calls, more than a cached switch costs, so
  this bench reads the weights directly;
- switch to B: B from disk while A goes into the cache; on a CPU that copies A's weights
  out of their file mapping into RAM, once per model;
- first switch back: A from the cache while B goes in (B's one copy into RAM included);
- cached switch: the median of A <-> B switches once both are in RAM, measured the same
  way as the cold switch.  Target: <= 0.2x the cold switch.

It imports torch at the top: a bench of the worker's backend, never imported by the API.

    python -m bench.cache
"""

from __future__ import annotations

import time

import torch

from bench.modes import FULL_MODEL, drop_page_cache
from jobs.messages import ResolvedMode
from workers.memory import MIB

OTHER_MODEL = FULL_MODEL.with_name("full-sd15-b")
ROUND_TRIPS = 2


def mode(name: str) -> ResolvedMode:
    path = FULL_MODEL if name == "A" else OTHER_MODEL
    return ResolvedMode(name=name, model_path=str(path), scheduler="lcm", backend="torch")


def touch(backend) -> float:
    """Seconds to read every weight of the loaded pipeline once (a lazily mapped one reads the disk)."""
    pipe = backend._pipe  # the bench reads the backend's own pipeline
    tensors = [t for c in pipe.components.values() if isinstance(c, torch.nn.Module) for t in c.parameters()]
    began = time.perf_counter()
    with torch.inference_mode():
        for tensor in tensors:
            tensor.sum()
    return time.perf_counter() - began


def switch(backend, name: str) -> tuple[float, float, float, float]:
    """(cost, prepare, first read, warm read): prepare + reading every weight - the same read warm."""
    prepared = backend.prepare(mode(name), "bench")
    first = touch(backend)
    warm = min(touch(backend) for _ in range(2))
    return prepared + first - warm, prepared, first, warm


def show(what: str, figures: tuple[float, float, float, float], cold: float | None = None) -> None:
    cost, prepared, first, warm = figures
    ratio = f" ({cost / cold:.3f}x cold)" if cold else ""
    print(f"{what}: {cost:.2f} s{ratio} = prepare {prepared:.3f} s + first read {first:.2f} s - warm read {warm:.2f} s")


def main() -> None:
    from workers.tiny_models import build_sd15
    from workers.torch_backend import TorchBackend

    build_sd15(FULL_MODEL, size="full")
    build_sd15(OTHER_MODEL, size="full", seed=99)
    print("command: python -m bench.cache")

    dropped = drop_page_cache()
    backend = TorchBackend()
    cold = switch(backend, "A")
    show(f"cold switch to A from disk (page cache {'dropped' if dropped else 'NOT dropped'})", cold)
    show("switch to B from disk, A copied into the cache", switch(backend, "B"), cold[0])
    show("first switch back to A from the cache, B copied in", switch(backend, "A"), cold[0])
    cached = [switch(backend, name) for _ in range(ROUND_TRIPS) for name in ("B", "A")]
    for figures in cached:
        show("  cached switch (both in RAM)", figures, cold[0])
    median = sorted(figures[0] for figures in cached)[len(cached) // 2]
    prepare = sorted(figures[1] for figures in cached)[len(cached) // 2]
    print(
        f"cached switch, median of {len(cached)}: {median:.3f} s = {median / cold[0]:.3f}x the cold switch "
        f"(target <= 0.2x); its prepare alone: {prepare:.3f} s"
    )
    report = backend.memory_report()["cache"]
    print(
        f"disk loads {backend.model_loads}, cache hits {backend.cache_hits}, evictions {report['evictions']}, "
        f"cached {report['bytes'] / MIB:.0f} MiB of a {report['budget_bytes'] / MIB:.0f} MiB budget"
    )


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
