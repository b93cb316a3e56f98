"""Post-generation super-resolution: a generation job with ``superres`` ends on an SR worker.

The generation worker stores its image under ``stages/<id>.png``, then in one atomic
step marks the job's stage ``superres``, gives up its lease and pushes the SR stage onto
the superres queue; the SR worker claims the same job (its record stays ``running``),
upscales and completes it.  A crash before that step is covered by redelivery of the
generation message (acked only after the hand-off); after it, the stage's message exists.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from jobs.messages import GenerateJob
from jobs.producer import Producer
from jobs.records import JobRecords
from jobs.superres import SUPERRES_QUEUE, SUPERRES_TASK, SuperResJob, generated_key
from tasks.celery_app import app
from tasks.lease import Lease

log = logging.getLogger(__name__)
HANDED_OFF, SUPERSEDED = "handed off", "superseded"
SUPERRES_STAGE = "superres"
_producer = Producer(app)


def hand_off(job: GenerateJob, lease: Lease, result: dict[str, Any], records: JobRecords) -> str:
    """Send the SR stage of ``job`` whose image is stored; ``result`` is the generation's result.
    Returns what happened: handed off, or superseded when the lease was no longer ours."""
    stage = SuperResJob(
        job_id=job.job_id,
        input_key=generated_key(job.job_id),
        options=job.superres,
        base_result={k: v for k, v in result.items() if k != "key"},
    )
    message = _producer.message(SUPERRES_TASK, stage.to_dict(), SUPERRES_QUEUE, str(uuid.uuid4()))
    if not lease.end(records.hand_off, SUPERRES_STAGE, message):
        log.warning("job %s: generated but lost its lease; another worker owns the job", job.job_id)
        return SUPERSEDED
    log.info("job %s: generated in %.2fs; handed to the superres queue", job.job_id, result["run_seconds"])
    return HANDED_OFF
