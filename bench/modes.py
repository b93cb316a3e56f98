"""Mode switch costs on a worker backend, measured in one run.

- cold switch: loading the full-size SD1.5 architecture (random weights, fp32) from disk
  into a TorchBackend (the OS page cache is dropped first when this process may do so;
  the output says whether it was);
- LoRA-only swap: switching between two modes on that loaded base that differ only in
  their LoRA (rank 4 on the UNet attention), against the cold switch.

    python -m bench.modes
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from jobs.messages import LoraRef, ResolvedMode
from tests.processes import ROOT

FULL_MODEL = ROOT / ".cache" / "models" / "full-sd15"
LORAS = ROOT / ".cache" / "loras" / "full-sd15"


def drop_page_cache() -> bool:
    """Best effort: True when the kernel's page cache was dropped."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def mode(name: str, loras: tuple[LoraRef, ...] = ()) -> ResolvedMode:
    return ResolvedMode(name=name, model_path=str(FULL_MODEL), scheduler="lcm", backend="torch", loras=loras)


def tiny_call(backend) -> float:
    """One 64x64, 1-step generation: touches every weight of the pipeline."""
    from jobs.messages import GenerateJob, GenerateParams

    job = GenerateJob("bench", mode("plain"), GenerateParams("warm", "", 64, 64, 1, 1.0, 1))
    began = time.perf_counter()
    backend.generate(job, lambda step, total: None)
    return time.perf_counter() - began


def main() -> None:
    from workers.tiny_loras import build_lora
    from workers.tiny_models import build_sd15
    from workers.torch_backend import TorchBackend

    build_sd15(FULL_MODEL, size="full")
    style = build_lora(FULL_MODEL, LORAS / "style.safetensors", seed=1)
    detail = build_lora(FULL_MODEL, LORAS / "detail.safetensors", seed=2, fmt="kohya")
    print("command: python -m bench.modes")

    dropped = drop_page_cache()
    backend = TorchBackend()
    # safetensors maps weights lazily: the first pipeline call still reads them from disk.
    # The cold switch is load + first small call - the same call warm.
    load = backend.prepare(mode("plain"), "bench")
    first = tiny_call(backend)
    warm = min(tiny_call(backend) for _ in range(2))
    cold = load + first - warm
    swaps = []
    for loras in ([LoraRef(str(style), 1.0, "style")], [LoraRef(str(detail), 0.8, "detail")]) * 2:
        swaps.append(backend.prepare(mode("styled", tuple(loras)), "bench"))
    back = backend.prepare(mode("plain"), "bench")
    swap = sorted(swaps)[len(swaps) // 2]
    cache = "dropped" if dropped else "NOT dropped"
    print(
        f"cold switch, full-size SD1.5 from disk (page cache {cache}): {cold:.2f} s "
        f"(from_pretrained {load:.2f} s + first 64 px step {first:.2f} s - warm step {warm:.2f} s)"
    )
    print(f"LoRA-only swap on the loaded base, median of {len(swaps)}: {swap:.3f} s ({swap / cold:.3f}x cold)")
    print(f"back to no LoRA (unload): {back:.3f} s; base loads in the run: {backend.model_loads}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
