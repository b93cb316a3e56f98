"""Recently used models kept in host RAM, least recently used first out.

A worker that switches to another model puts the outgoing one here (its base state,
on the CPU) instead of dropping it, so a switch back is a copy to the device, not a
disk load.  The cache knows nothing of torch: entries are values with a size in bytes.

The budget (``cache_budget``): ``HOST_CACHE_MB`` when set (``0`` turns the cache off),
else the host's ``MemAvailable`` plus what the cache already holds in RAM, minus a
safety margin (a tenth of the host's RAM, at least 1 GiB).  Either way it never exceeds
``MEMORY_LIMIT_MB`` minus what the worker holds loaded: that cap counts every model
byte the worker keeps, in the cache or on its device.  Free memory is measured at each
use, so a cache shrinks when other processes take the host's memory.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from workers.memory import MIB, host_memory, memory_limit

log = logging.getLogger(__name__)
GIB = 1024 * MIB
T = TypeVar("T")


@dataclass(frozen=True)
class CacheEntry(Generic[T]):
    key: str
    value: T
    size: int


class ModelCache(Generic[T]):
    """An LRU map of model path -> value with sizes; safe to read from other threads."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, CacheEntry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(entry.size for entry in self._entries.values())

    def entries(self) -> list[CacheEntry[T]]:
        """Least recently used first."""
        with self._lock:
            return list(self._entries.values())

    def peek(self, key: str) -> CacheEntry[T] | None:
        return self._entries.get(key)

    def take(self, key: str) -> T:
        """Remove ``key``'s entry (it leaves the cache to be used) and return its value."""
        with self._lock:
            return self._entries.pop(key).value

    def put(self, key: str, value: T, size: int, budget: int, job_id: str) -> bool:
        """Keep ``value`` as the most recently used entry, evicting older ones to fit ``budget``.

        An entry larger than the whole budget is not kept (and evicts nothing): False.
        """
        if size > budget:
            log.info(
                "job %s: not caching %s in host RAM: %.0f MiB exceeds the cache budget of %.0f MiB",
                job_id,
                key,
                size / MIB,
                budget / MIB,
            )
            return False
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = CacheEntry(key, value, size)
        self.shrink(budget, job_id, keep=key)
        return True

    def shrink(self, budget: int, job_id: str, keep: str | None = None) -> int:
        """Evict least recently used entries (never ``keep``) until the cache fits ``budget``; the bytes freed."""
        freed = 0
        while self.bytes > budget:
            oldest = next((key for key in self._entries if key != keep), None)
            if oldest is None:
                break
            freed += self.evict(oldest, job_id)
        return freed

    def evict_oldest(self, job_id: str) -> int:
        """Evict the least recently used entry; the bytes freed (0 when empty)."""
        oldest = next(iter(self._entries), None)
        return 0 if oldest is None else self.evict(oldest, job_id)

    def evict(self, key: str, job_id: str) -> int:
        with self._lock:
            entry = self._entries.pop(key)
            self.evictions += 1
        log.info("job %s: evicted %s from the host cache, freed %d bytes", job_id, key, entry.size)
        return entry.size


def safety_margin() -> int:
    """Host memory the derived budget leaves free: a tenth of the RAM, at least 1 GiB."""
    return max(GIB, host_memory()[0] // 10)


def cache_budget(resident: int, held: int) -> int:
    """Bytes the host cache may hold (see the module docstring for the rule).

    ``resident``: bytes of the cache's would-be contents already in host RAM (its entries,
    and an incoming model that is already there); ``held``: the model and LoRAs loaded.
    """
    raw = os.environ.get("HOST_CACHE_MB", "").strip()
    budget = int(raw) * MIB if raw else resident + host_memory()[1] - safety_margin()
    limit = memory_limit()
    if limit is not None:
        budget = min(budget, limit - held)
    return max(budget, 0)
