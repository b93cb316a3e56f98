"""Leases on a real Redis: the process's keeper renews every held lease; ending a job gives its lease up."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from jobs.records import CLAIMED, HELD, JobRecords
from tasks.lease import Lease
from tests.processes import wait_for

TTL = 1.0  # seconds: the keeper renews every third of it


@pytest.fixture
def records(redis_server) -> JobRecords:
    return JobRecords(redis_server.client(), ttl=60)


def claimed(records: JobRecords, client) -> Lease:
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "m", {}, ["q"], 10)
    lease = Lease(client, job_id, TTL)
    assert lease.acquire(lambda token: records.claim(job_id, token, "w", TTL)) == CLAIMED
    return lease


def test_held_leases_outlive_their_ttl_and_released_ones_end(records, redis_server):
    client = redis_server.client()
    leases = [claimed(records, client) for _ in range(3)]
    for lease in leases:
        lease.__enter__()
    time.sleep(3 * TTL)
    for lease in leases:
        assert records.claim(lease.job_id, "other", "w", TTL) == HELD, "renewed while held"
    leases[0].release()
    assert not client.exists(f"dl:lease:{leases[0].job_id}"), "released at once"
    time.sleep(1.5 * TTL)
    assert records.claim(leases[1].job_id, "other", "w", TTL) == HELD, "the others are still renewed"
    for lease in leases[1:]:
        lease.release()


def test_ending_the_job_gives_the_lease_up_in_the_same_step(records, redis_server):
    client = redis_server.client()
    with claimed(records, client) as lease:
        assert lease.end(records.succeed, {"key": "k"})
        assert not client.exists(f"dl:lease:{lease.job_id}")
    assert records.get(lease.job_id)["status"] == "succeeded"


def test_a_lease_taken_from_its_holder_is_reported_lost(records, redis_server, caplog):
    client = redis_server.client()
    lease = claimed(records, client)
    with caplog.at_level(logging.ERROR, logger="tasks.lease"), lease:
        client.set(f"dl:lease:{lease.job_id}", "someone-else")
        wait_for(lambda: "lease lost" in caplog.text, 5, "the keeper's report of a lost lease")
    assert client.get(f"dl:lease:{lease.job_id}") == b"someone-else", "releasing does not touch another's lease"
