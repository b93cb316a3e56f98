"""``GET /api/jobs`` against the API under gunicorn on a real Redis: newest first, filters, cursor
pages, each user key its own jobs, and the index kept in step with JOB_TTL.  No worker runs: the
jobs stay queued unless canceled."""

from __future__ import annotations

import redis
import requests

from jobs.index import ALL_JOBS
from jobs.keys import job_key
from tests.client import submit
from tests.processes import wait_for
from tests.test_keys import bearer, create_key


def listing(base: str, headers: dict | None = None, **query) -> dict:
    response = requests.get(f"{base}/api/jobs", params=query, headers=headers or {}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(base: str, **query) -> list[str]:
    ids, cursor = [], None
    while True:
        page = listing(base, **query, **({"cursor": cursor} if cursor else {}))
        ids += [job["id"] for job in page["jobs"]]
        cursor = page["next"]
        if cursor is None:
            return ids


def test_newest_first_in_cursor_pages_with_filters(make_stack):
    base = make_stack().start_api()
    submitted = [submit(base, mode=mode, prompt=f"job {i}")["id"] for i, mode in enumerate(["npu", "demo"] * 4)]
    newest_first = submitted[::-1]

    assert all_pages(base, limit=3) == newest_first
    first = listing(base, limit=3)
    assert [job["id"] for job in first["jobs"]] == newest_first[:3]
    assert first["jobs"][0]["params"]["prompt"] == "job 7" and first["jobs"][0]["status"] == "queued"

    assert all_pages(base, mode="npu", limit=2) == newest_first[1::2]
    assert requests.delete(f"{base}/api/jobs/{submitted[2]}", timeout=30).status_code in (200, 202)
    assert all_pages(base, status="canceled") == [submitted[2]]
    assert all_pages(base, status="queued,canceled", mode="npu", kind="generate") == newest_first[1::2]
    assert all_pages(base, kind="switch") == []


def test_bad_filters_and_cursors_are_400_naming_the_field(make_stack):
    base = make_stack().start_api()
    for query, field in (
        ({"status": "done"}, "status"),
        ({"kind": "video"}, "kind"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ):
        response = requests.get(f"{base}/api/jobs", params=query, timeout=30)
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["field"] == field


def test_a_user_key_lists_its_own_jobs_and_an_admin_all(make_stack):
    stack = make_stack(AUTH="keys")
    base = stack.start_api()
    alice, bob = create_key(stack.env, "user", "alice"), create_key(stack.env, "user", "bob")
    admin = create_key(stack.env, "admin", "ops")
    mine = []
    for key in (alice, bob, alice):
        response = requests.post(f"{base}/api/jobs", json={"mode": "npu", "prompt": "x"}, headers=bearer(key))
        assert response.status_code == 202, response.text
        mine.append(response.json()["id"])
    assert [j["id"] for j in listing(base, bearer(alice))["jobs"]] == [mine[2], mine[0]]
    assert [j["id"] for j in listing(base, bearer(bob))["jobs"]] == [mine[1]]
    assert [j["id"] for j in listing(base, bearer(admin))["jobs"]] == mine[::-1]


def test_entries_of_expired_records_leave_the_index(make_stack):
    stack = make_stack(JOB_TTL="1")
    base = stack.start_api()
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    old = submit(base, mode="npu", prompt="old")["id"]
    wait_for(lambda: not client.exists(job_key(old)), 30, "the first record to expire")
    assert client.zscore(ALL_JOBS, old) is not None  # still indexed until the next insert trims it
    new = submit(base, mode="npu", prompt="new")["id"]
    assert [raw.decode() for raw in client.zrange(ALL_JOBS, 0, -1)] == [new]

    client.delete(job_key(new))  # gone early: the listing skips it and drops its entry
    assert listing(base) == {"jobs": [], "next": None}
    assert client.zcard(ALL_JOBS) == 0
