"""What a terminal write counts for /metrics, in its own script (jobs/metrics.py ``LUA_COUNT_END``), on a real Redis.

The script reads the record's ISO stamps as epoch seconds itself; these records are stamped across a
leap day and a month's end so that a wrong calendar in the script shows as a wrong bucket or sum.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest

from jobs.keys import job_key
from jobs.metrics import LUA_COUNT_END, METRICS_KEY
from jobs.records import CANCELED_NOW, CLAIMED, JobRecords


@pytest.fixture
def records(redis_server) -> JobRecords:
    return JobRecords(redis_server.client(), ttl=60)


def figures(redis_server) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis_server.client().hgetall(METRICS_KEY).items()}


def claimed_job(records: JobRecords, redis_server, created: str, started: str) -> str:
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "sd", {"seed": 1}, ["q"], 10)
    assert records.claim(job_id, "T", "host-1", lease_ttl=30) == CLAIMED
    redis_server.client().hset(job_key(job_id), mapping={"created_at": created, "started_at": started})
    return job_id


def test_a_success_counts_its_times_passes_and_load_in_its_own_write(records, redis_server, caplog):
    created, started = "2024-02-29T23:59:59.900+00:00", "2024-03-01T00:00:00.100+00:00"
    job_id = claimed_job(records, redis_server, created, started)
    with caplog.at_level(logging.INFO, logger="jobs.metrics"):
        assert records.succeed(job_id, "T", {"key": "k", "superres": {"passes": 2}, "load_seconds": 3.0})
    finished = datetime.fromisoformat(records.get(job_id)["finished_at"])

    got = figures(redis_server)
    assert got["c|jobs_ended|generate|sd|succeeded"] == "1"
    assert got["h|queue_wait|sd|0.25"] == "1", "0.2 s across the leap day's midnight"
    assert float(got["h|queue_wait|sd|sum"]) == pytest.approx(0.2, abs=1e-6)
    assert got["h|run|sd|+Inf"] == got["h|end_to_end|sd|+Inf"] == "1"
    took = (finished - datetime.fromisoformat(started)).total_seconds()
    assert float(got["h|run|sd|sum"]) == pytest.approx(took, abs=1e-3)
    assert float(got["h|end_to_end|sd|sum"]) == pytest.approx(took + 0.2, abs=1e-3)
    assert got["c|superres_passes"] == "2"
    assert "h|load|sd|2.5" not in got and got["h|load|sd|5.0"] == got["h|load|sd|count"] == "1", "3 s of load"
    assert f"job {job_id}: ended succeeded kind=generate mode=sd worker=host-1 end_to_end=" in caplog.text
    assert "queue_wait=0.200s" in caplog.text

    assert not records.succeed(job_id, "T", {"key": "again"})
    assert figures(redis_server)["c|jobs_ended|generate|sd|succeeded"] == "1", "a refused write counts nothing"


def test_a_cancel_of_a_queued_job_counts_it_once(records, redis_server):
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "sd", {"seed": 1}, ["q"], 10)
    assert records.cancel(job_id) == CANCELED_NOW
    assert records.cancel(job_id) != CANCELED_NOW
    got = figures(redis_server)
    assert got["c|jobs_ended|generate|sd|canceled"] == "1"
    assert got["h|end_to_end|sd|count"] == "1"
    assert "h|run|sd|count" not in got, "it never ran"


def test_a_record_without_stamps_is_still_counted(records, redis_server):
    job_id = claimed_job(records, redis_server, "", "")
    redis_server.client().hdel(job_key(job_id), "created_at", "started_at", "kind", "mode")
    assert records.fail(job_id, "T", "broke")
    got = figures(redis_server)
    assert got["c|jobs_ended|||failed"] == "1"
    assert not [k for k in got if k.startswith("h|")]


def test_the_script_reads_stamps_as_epoch_seconds(redis_server):
    script = redis_server.client().register_script(LUA_COUNT_END + "return tostring(epoch(ARGV[1]))")
    for stamp in ("1970-01-01T00:00:00.000+00:00", "2000-03-01T12:34:56.789+00:00", "2026-12-31T23:59:59.999+00:00"):
        expected = datetime.fromisoformat(stamp).astimezone(UTC).timestamp()
        assert float(script(args=[stamp])) == pytest.approx(expected, abs=1e-3)
