"""Waiting on a benchmark's jobs with a bound: a bench never hangs on a lost job, it names it."""

from __future__ import annotations

import time
from typing import Any

from jobs.records import SUCCEEDED, TERMINAL, JobRecords

POLL = 0.2


def wait_for_jobs(records: JobRecords, ids: list[str], bound: float) -> list[dict[str, Any]]:
    """The records of ``ids`` once every one has succeeded.  A job that ends otherwise, or any job
    still unfinished ``bound`` seconds from now, stops the bench with those jobs' ids and records."""
    deadline = time.monotonic() + bound
    while True:
        done = [records.get(job_id) for job_id in ids]
        left = [(job_id, r) for job_id, r in zip(ids, done, strict=True) if r is None or r["status"] not in TERMINAL]
        if not left:
            failed = [(job_id, r) for job_id, r in zip(ids, done, strict=True) if r["status"] != SUCCEEDED]
            if failed:
                raise SystemExit(f"{len(failed)} of {len(ids)} jobs did not succeed:\n{_listing(failed)}")
            return done
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(left)} of {len(ids)} jobs unfinished after {bound:.0f} s:\n{_listing(left)}")
        time.sleep(POLL)


def _listing(jobs: list[tuple[str, dict[str, Any] | None]]) -> str:
    return "\n".join(f"  {job_id}: {record}" for job_id, record in jobs)
