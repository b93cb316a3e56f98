"""Redis key and queue names, in one place so both sides agree."""

PREFIX = "dl"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def done_key(job_id: str) -> str:
    """A list the worker pushes to when the job ends, so waiters can BLPOP."""
    return f"{PREFIX}:job:{job_id}:done"


def lease_key(job_id: str) -> str:
    return f"{PREFIX}:lease:{job_id}"


def worker_key(worker_name: str) -> str:
    return f"{PREFIX}:worker:{worker_name}"


WORKERS_PATTERN = f"{PREFIX}:worker:*"


def generation_queue(backend: str, mode: str) -> str:
    """The Celery queue holding generation jobs of one mode on one backend."""
    return f"gen.{backend}.{mode}"


def result_object_key(job_id: str) -> str:
    return f"jobs/{job_id}.png"


GENERATE_TASK = "dreamlab.generate"
SWITCH_TASK = "dreamlab.switch_mode"
CUSTOM_TASK = "dreamlab.custom"
CUSTOM_QUEUE = "custom"  # every worker consumes it; handlers are not bound to a mode
