"""The locally built tiny models: deterministic builds, deterministic pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from workers.tiny_models import build_sd15


def digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.safetensors"))
    }


def test_same_seed_builds_identical_weights(tmp_path, tiny_model):
    rebuilt = build_sd15(tmp_path / "again", size="tiny")
    assert digest(rebuilt) == digest(tiny_model)
    other = build_sd15(tmp_path / "other", size="tiny", seed=99)
    assert digest(other) != digest(tiny_model)


def test_build_is_skipped_when_marker_matches(tiny_model):
    before = {p: p.stat().st_mtime_ns for p in tiny_model.rglob("*")}
    build_sd15(tiny_model, size="tiny")
    assert {p: p.stat().st_mtime_ns for p in tiny_model.rglob("*")} == before


def test_tokenizer_is_local_and_byte_level(tiny_model):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_model / "tokenizer", local_files_only=True)
    ids = tokenizer("a café").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == "acafé"


@pytest.mark.parametrize("scheduler", ["default", "lcm", "euler_a", "dpmpp_2m"])
def test_same_seed_same_pixels_through_the_backend(tiny_model, scheduler):
    from jobs.messages import GenerateJob, GenerateParams, ResolvedMode
    from workers.torch_backend import TorchBackend

    def job(seed: int) -> GenerateJob:
        return GenerateJob(
            job_id=f"job-{seed}",
            mode=ResolvedMode(name="t", model_path=str(tiny_model), scheduler=scheduler, backend="torch"),
            params=GenerateParams(
                prompt="a fox", negative_prompt="", width=64, height=64, steps=4, guidance=2.0, seed=seed
            ),
        )

    backend = TorchBackend()
    steps: list[tuple[int, int]] = []
    first = np.asarray(backend.generate(job(1), lambda i, n: steps.append((i, n))).image)
    again = np.asarray(backend.generate(job(1), lambda i, n: None).image)
    other = np.asarray(backend.generate(job(2), lambda i, n: None).image)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert steps[-1][0] == steps[-1][1] and [s for s, _ in steps] == list(range(1, len(steps) + 1))
