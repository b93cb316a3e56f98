"""``GET /api/jobs``: recent jobs, newest first, filtered by status, mode and kind, a page at a time.

Read from the job index (jobs/index.py).  A user key's listing reads its own index, so it never
sees another key's jobs; an admin key (and anyone under AUTH=off) reads the index of all jobs.
A filter is applied to the records as they are read, and one request reads at most SCAN_MAX
index entries: a filter that matches rarely gives short (even empty) pages with a ``next``
cursor rather than one slow request.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, Field

from api.caller import owner_name, sees_everything
from api.errors import ApiError
from api.openapi import documented
from api.schemas.responses import Job
from api.services import services
from api.views import public_job
from jobs import index
from jobs.records import CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED

bp = Blueprint("joblist", __name__)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED)
KINDS = ("generate", "superres", "switch", "custom")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
SCAN_MAX = 1000
_CHUNK = 50


class JobListQuery(BaseModel):
    """The job list's query parameters (the view reads them itself, to answer in the API's error shape)."""

    status: str | None = Field(
        None, description=f"One status or several, comma-separated: {', '.join(STATUSES)}.", examples=["succeeded"]
    )
    mode: str | None = Field(None, description="One mode name or several, comma-separated.")
    kind: str | None = Field(None, description=f"One kind or several, comma-separated: {', '.join(KINDS)}.")
    limit: int | None = Field(None, ge=1, le=MAX_LIMIT, description=f"Jobs a page (default {DEFAULT_LIMIT}).")
    cursor: str | None = Field(None, description="The previous page's `next`.")


class JobList(BaseModel):
    jobs: list[Job] = Field(description="Newest first.")
    next: str | None = Field(description="The cursor of the next page; null on the last.")


@bp.get("/api/jobs")
@documented(
    tags=("jobs",),
    query=JobListQuery,
    ok={200: (JobList, "Recent jobs, newest first; a `user` key's own only.")},
    errors={400: "A filter, `limit` or `cursor` is invalid; the message says which."},
)
def list_jobs():
    """Recent jobs, newest first, filtered and in pages."""
    filters = _filters()
    limit = _limit()
    after = _cursor()
    own = "" if sees_everything() else owner_name()
    source = index.owner_index(own) if own else index.ALL_JOBS
    jobs, last, exhausted = _page(source, after, filters, limit, [source] if own else [])
    return jsonify({"jobs": jobs, "next": None if exhausted else last.encode()})


def _page(
    source: str, after: index.Cursor | None, filters: dict[str, set[str]], limit: int, owner_indexes: list[str]
) -> tuple[list[dict[str, Any]], index.Cursor | None, bool]:
    """Up to ``limit`` matching jobs after ``after``; the cursor of the last entry read; whether the index ran out."""
    svc = services()
    entries = islice(index.entries(svc.redis, source, after), SCAN_MAX)
    jobs: list[dict[str, Any]] = []
    last, scanned = after, 0
    while chunk := list(islice(entries, _CHUNK)):
        scanned += len(chunk)
        gone = []
        for (job_id, score), record in zip(chunk, svc.records.get_many([j for j, _ in chunk]), strict=True):
            last = index.Cursor(score, job_id)
            if record is None:
                gone.append(job_id)
            elif all(record.get(field) in wanted for field, wanted in filters.items()):
                jobs.append(public_job(record))
                if len(jobs) == limit:
                    break
        index.drop(svc.redis, gone, owner_indexes)
        if len(jobs) == limit:
            return jobs, last, False
        if len(chunk) < _CHUNK:
            return jobs, last, True
    return jobs, last, scanned < SCAN_MAX


def _filters() -> dict[str, set[str]]:
    """``status``, ``mode`` and ``kind``, each one value or several separated by commas."""
    filters = {}
    for field, allowed in (("status", STATUSES), ("kind", KINDS), ("mode", None)):
        raw = request.args.get(field, "").strip()
        if not raw:
            continue
        wanted = {part.strip() for part in raw.split(",") if part.strip()}
        bad = sorted(wanted - set(allowed)) if allowed else []
        if bad:
            raise ApiError(400, f"{field} {', '.join(bad)!s} is not one of: {', '.join(allowed)}", field=field)
        filters[field] = wanted
    return filters


def _limit() -> int:
    raw = request.args.get("limit", "")
    try:
        limit = int(raw) if raw else DEFAULT_LIMIT
    except ValueError:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return limit


def _cursor() -> index.Cursor | None:
    raw = request.args.get("cursor", "")
    if not raw:
        return None
    try:
        return index.Cursor.decode(raw)
    except ValueError:
        message = "cursor is not one this API gave out: pass the 'next' of a previous page"
        raise ApiError(400, message, field="cursor") from None
