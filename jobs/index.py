"""The job list's index (``GET /api/jobs``): which jobs exist, newest first, and whose they are.

Two sorted sets scored by admission time in milliseconds: ``dl:jobs`` holds every job, and
``dl:jobs:owner:<name>`` the jobs of one API key.  A job joins both in the script that admits
it (jobs/records.py ``_ADMIT``), scored by Redis' clock.

Kept in step with JOB_TTL: a record expires JOB_TTL seconds after its admission and nothing
renews it, so an entry scored before ``now - JOB_TTL`` names an expired record.  Every admission
trims such entries from the sets it joins (ZREMRANGEBYSCORE, O(log n + removed)), and a listing
that meets an entry whose record is gone anyway (deleted early, or admitted a few milliseconds
before its score) skips it and removes it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from jobs.keys import PREFIX

ALL_JOBS = f"{PREFIX}:jobs"
_BATCH = 100  # entries read per round trip while a listing fills its page


def owner_index(owner: str) -> str:
    return f"{PREFIX}:jobs:owner:{owner}"


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last entry's score and job ID (entries of equal score go by ID, descending)."""

    score: int
    job_id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.score}:{self.job_id}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for text that no page gave out."""
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        score, _, job_id = raw.partition(":")
        if not job_id:
            raise ValueError(text)
        return cls(int(score), job_id)


def entries(client: redis.Redis, index: str, after: Cursor | None) -> Iterator[tuple[str, int]]:
    """(job ID, score) of the index, newest first, from just after ``after``."""
    top: int | str = after.score if after else "+inf"
    skip = 0  # entries already read at score ``top`` (a millisecond may hold more than a batch)
    while True:
        batch = client.zrevrangebyscore(index, top, "-inf", start=skip, num=_BATCH, withscores=True)
        rows = [(raw.decode(), int(score)) for raw, score in batch]
        yield from (r for r in rows if after is None or r[1] < after.score or r[0] < after.job_id)
        if len(rows) < _BATCH:
            return
        last = rows[-1][1]
        same = sum(1 for _, score in rows if score == last)
        skip = skip + same if last == top else same
        top = last


def drop(client: redis.Redis, job_ids: list[str], owner_indexes: list[str]) -> None:
    """Remove entries whose records are gone."""
    if job_ids:
        for index in (ALL_JOBS, *owner_indexes):
            client.zrem(index, *job_ids)
