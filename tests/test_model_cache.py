"""The host-RAM model cache: LRU order, eviction to a budget, and the budget rule."""

from __future__ import annotations

import logging

from tests.processes import wait_for
from workers.memory import MIB, host_memory
from workers.model_cache import GIB, ModelCache, cache_budget, safety_margin


def filled(*sizes: int) -> ModelCache[str]:
    cache: ModelCache[str] = ModelCache()
    for index, size in enumerate(sizes):
        assert cache.put(f"m{index}", f"pipe{index}", size, budget=1000, job_id="fill")
    return cache


def test_put_take_and_lru_order():
    cache = filled(10, 20, 30)
    assert [e.key for e in cache.entries()] == ["m0", "m1", "m2"] and cache.bytes == 60
    assert "m1" in cache and cache.peek("m1").size == 20
    assert cache.take("m1") == "pipe1"
    assert "m1" not in cache and cache.bytes == 40
    cache.put("m1", "pipe1", 20, budget=1000, job_id="j")  # back in as the most recent
    assert [e.key for e in cache.entries()] == ["m0", "m2", "m1"]
    cache.put("m0", "pipe0-again", 10, budget=1000, job_id="j")  # a key again replaces its entry
    assert [e.key for e in cache.entries()] == ["m2", "m1", "m0"] and cache.bytes == 60
    assert cache.evictions == 0


def test_put_evicts_least_recently_used_to_fit_and_logs_it(caplog):
    cache = filled(10, 20, 30)
    with caplog.at_level(logging.INFO, logger="workers.model_cache"):
        assert cache.put("new", "pipe", 25, budget=60, job_id="job-7")
    assert [e.key for e in cache.entries()] == ["m2", "new"] and cache.bytes == 55
    assert cache.evictions == 2
    evicted = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
    assert evicted == [
        "job job-7: evicted m0 from the host cache, freed 10 bytes",
        "job job-7: evicted m1 from the host cache, freed 20 bytes",
    ]


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing():
    cache = filled(10, 20)
    assert not cache.put("huge", "pipe", 50, budget=40, job_id="j")
    assert [e.key for e in cache.entries()] == ["m0", "m1"] and cache.evictions == 0
    assert not cache.put("any", "pipe", 1, budget=0, job_id="j")  # a zero budget keeps nothing


def test_shrink_and_evict_oldest():
    cache = filled(10, 20, 30)
    assert cache.shrink(35, job_id="j") == 30  # m0 and m1 go: 30 left
    assert [e.key for e in cache.entries()] == ["m2"]
    assert cache.evict_oldest("j") == 30 and len(cache) == 0
    assert cache.evict_oldest("j") == 0
    assert cache.evictions == 3


def test_budget_from_host_cache_mb(monkeypatch):
    monkeypatch.setenv("HOST_CACHE_MB", "100")
    monkeypatch.delenv("MEMORY_LIMIT_MB", raising=False)
    assert cache_budget(resident=0, held=10**9) == 100 * MIB
    monkeypatch.setenv("HOST_CACHE_MB", "0")
    assert cache_budget(resident=5 * MIB, held=0) == 0


def test_budget_from_free_memory_counts_the_cache_itself(monkeypatch):
    monkeypatch.delenv("HOST_CACHE_MB", raising=False)
    monkeypatch.delenv("MEMORY_LIMIT_MB", raising=False)
    total, _ = host_memory()
    assert GIB <= safety_margin() == max(GIB, total // 10)
    resident = 300 * MIB

    def budget_between_two_readings() -> bool:
        """MemAvailable moves as other processes run: the budget must lie between the rule applied to a
        reading just before and one just after it (retried until no other process moved memory back and forth)."""
        before = max(resident + host_memory()[1] - safety_margin(), 0)
        budget = cache_budget(resident=resident, held=0)
        after = max(resident + host_memory()[1] - safety_margin(), 0)
        return min(before, after) <= budget <= max(before, after)

    wait_for(budget_between_two_readings, 30, "a budget between two readings of MemAvailable", interval=0.01)


def test_budget_never_exceeds_memory_limit_beside_the_loaded_model(monkeypatch):
    monkeypatch.setenv("MEMORY_LIMIT_MB", "100")
    monkeypatch.setenv("HOST_CACHE_MB", "500")
    assert cache_budget(resident=0, held=30 * MIB) == 70 * MIB
    monkeypatch.delenv("HOST_CACHE_MB")
    assert cache_budget(resident=0, held=30 * MIB) <= 70 * MIB
    assert cache_budget(resident=0, held=200 * MIB) == 0
