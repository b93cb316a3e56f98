"""Leases on a real Redis: the process's keeper renews every held lease; ending a job gives its lease up."""

from __future__ import annotations

import logging
import uuid

import pytest

from jobs.records import CLAIMED, HELD, JobRecords
from tasks.lease import Lease
from tests.processes import wait_for

TTL = 2.0  # seconds: the keeper renews every third of it


@pytest.fixture
def records(redis_server) -> JobRecords:
    return JobRecords(redis_server.client(), ttl=60)


def claimed(records: JobRecords, client) -> Lease:
    job_id = str(uuid.uuid4())
    records.create(job_id, "generate", "m", {}, ["q"], 10)
    lease = Lease(client, job_id, TTL)
    assert lease.acquire(lambda token: records.claim(job_id, token, "w", TTL)) == CLAIMED
    return lease


class Renewals:
    """Counts the renewals of one lease key, seen as its remaining time going up between two reads."""

    def __init__(self, client, job_id: str) -> None:
        self.client, self.key = client, f"dl:lease:{job_id}"
        self.count, self._last = 0, client.pttl(self.key)

    def seen(self, wanted: int) -> bool:
        """Read once; True once ``wanted`` renewals were seen.  A key that expired fails the test."""
        remaining = self.client.pttl(self.key)
        assert remaining > 0, f"{self.key} expired while held"
        self.count += remaining > self._last
        self._last = remaining
        return self.count >= wanted


def renewed(watches: list[Renewals], times: int) -> None:
    """Wait until every lease in ``watches`` was renewed ``times`` more times (reading them all each round)."""
    wanted = [watch.count + times for watch in watches]
    wait_for(
        lambda: all([watch.seen(n) for watch, n in zip(watches, wanted, strict=True)]),
        60,
        f"{times} renewals of each lease",
        interval=0.05,
    )


def test_held_leases_outlive_their_ttl_and_released_ones_end(records, redis_server):
    """Held leases are renewed (their keys live on past their TTL); a released one ends at once, the others go on."""
    client = redis_server.client()
    leases = [claimed(records, client) for _ in range(3)]
    for lease in leases:
        lease.__enter__()
    watches = [Renewals(client, lease.job_id) for lease in leases]
    renewed(watches, 4)  # four renewals a third of the TTL apart: each key outlived its first TTL
    for lease in leases:
        assert records.claim(lease.job_id, "other", "w", TTL) == HELD, "renewed while held"
    leases[0].release()
    assert not client.exists(f"dl:lease:{leases[0].job_id}"), "released at once"
    renewed(watches[1:], 2)
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
