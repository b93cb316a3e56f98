"""Stranded turns: a mode whose waiting jobs have no message left to deliver them gets one.

The turn invariant (tasks/turns.py) keeps a pending delivery for every waiting job, so
long as no message is lost on its way to a worker.  kombu's Redis transport can lose
one: a worker pops a message (BRPOP) and records it as unacked in a second round trip,
so a worker killed between the two, or a Redis that refuses or drops the second, leaves
the message nowhere.  A job of its mode then waits with no delivery to take its turn.

Each sweep of the orphan sweeper (tasks/orphans.py: one worker of the fleet per
interval) reads, for every mode of the config, the first job of its waiting set and the
length of its queue, in one round trip.  A mode with a waiting job, no message in its
queue and no delivery in kombu's unacked hash (read only then: it holds one entry per
delivery in flight, dead workers' included until they are restored) has lost its turns,
and gets a message for its first waiting job.  A message too many costs one delivery
that reads the set; under ROUTER=fifo a mode's queue is the backend's, so a stranded
job waits until that queue empties.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable

import redis

from jobs.keys import GENERATE_TASK, SWITCH_TASK, mode_queue, waiting_key
from jobs.producer import Producer
from jobs.records import QUEUED, JobRecords

log = logging.getLogger(__name__)
UNACKED = "unacked"  # kombu's Redis transport default key: delivery tag -> [message, exchange, routing key]
ModeName = tuple[str, str]  # (backend, mode)


class StrandedTurns:
    def __init__(
        self,
        client: redis.Redis,
        records: JobRecords,
        router: str,
        modes: Callable[[], list[ModeName]],
        producer: Producer,
    ) -> None:
        """``modes``: the (backend, mode) pairs of the current modes config."""
        self._redis = client
        self._records = records
        self._router = router
        self._modes = modes
        self._producer = producer

    def sweep(self) -> list[str]:
        """Publish a message for the first waiting job of each mode left with none; their ids."""
        modes = self._modes()
        pipe = self._redis.pipeline(transaction=False)
        for backend, name in modes:
            pipe.zrange(waiting_key(backend, name), 0, 0)
            pipe.llen(mode_queue(self._router, backend, name))
        replies = pipe.execute()
        idle = {
            mode: first[0].decode()
            for mode, first, queued in zip(modes, replies[::2], replies[1::2], strict=True)
            if first and not queued
        }
        if not idle:
            return []
        delivering = self._delivering()
        return [job_id for mode, job_id in idle.items() if mode not in delivering and self._publish(job_id)]

    def _delivering(self) -> set[ModeName]:
        """The modes that a delivery in flight (in kombu's unacked hash) belongs to."""
        modes = set()
        for raw in self._redis.hvals(UNACKED):
            try:
                envelope = json.loads(raw)[0]
                mode = json.loads(base64.b64decode(envelope["body"]))[0][0]["mode"]
                modes.add((mode["backend"], mode["name"]))
            except (ValueError, KeyError, IndexError, TypeError):
                continue  # not a turn job's message (a custom job's, say)
        return modes

    def _publish(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        if record is None or record.get("status") != QUEUED or "payload" not in record:
            return False  # ended or expired meanwhile; a delivery that reads the set drops such entries
        mode = record["payload"]["mode"]
        task = GENERATE_TASK if record["kind"] == "generate" else SWITCH_TASK
        queue = mode_queue(self._router, mode["backend"], mode["name"])
        message = self._producer.message(task, record["payload"], queue, job_id)
        self._redis.lpush(message.queue, message.envelope)
        log.warning("job %s: waited in mode %s with no message left to deliver it; published one", job_id, mode["name"])
        return True
