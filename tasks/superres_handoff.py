"""Post-generation super-resolution: a generation job with ``superres`` ends on an SR worker.

The generation worker stores its image under ``stages/<id>.png``, gives up the job's
lease and sends the SR stage to the superres queue; the SR worker claims the same job
(its record stays ``running``), upscales and completes it.  A crash between the two is
covered by redelivery: the generation message is acked only after the hand-off, and a
duplicate stage is dropped by the lease like any duplicate delivery.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.messages import GenerateJob
from jobs.superres import SUPERRES_QUEUE, SUPERRES_TASK, SuperResJob, generated_key
from tasks.celery_app import app
from tasks.lease import Lease

log = logging.getLogger(__name__)
HANDED_OFF = "handed off"


def hand_off(job: GenerateJob, lease: Lease, result: dict[str, Any]) -> str:
    """Send the SR stage of ``job`` whose image is stored; ``result`` is the generation's result."""
    # Released first, so the SR worker's claim does not wait for this lease to lapse.
    lease.release()
    stage = SuperResJob(
        job_id=job.job_id,
        input_key=generated_key(job.job_id),
        options=job.superres,
        base_result={k: v for k, v in result.items() if k != "key"},
    )
    app.send_task(SUPERRES_TASK, args=[stage.to_dict()], queue=SUPERRES_QUEUE)
    log.info("job %s: generated in %.2fs; handed to the superres queue", job.job_id, result["run_seconds"])
    return HANDED_OFF
