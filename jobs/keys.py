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


def fifo_queue(backend: str) -> str:
    """The one generation queue of a backend under ROUTER=fifo (every mode, in arrival order)."""
    return f"gen.{backend}"


def mode_queue(router: str, backend: str, mode: str) -> str:
    """Where a mode's jobs go: its own queue (ROUTER=affinity) or the backend's one queue (fifo)."""
    return fifo_queue(backend) if router == "fifo" else generation_queue(backend, mode)


def waiting_key(backend: str, mode: str) -> str:
    """A sorted set of the mode's waiting jobs (score: submit time), for the router's backlog view."""
    return f"{PREFIX}:waiting:{backend}:{mode}"


def arrivals_key(backend: str, mode: str) -> str:
    """A counter of the mode's admitted jobs, ever: the allocator turns it into an arrival rate (tasks/arrivals.py)."""
    return f"{PREFIX}:arrived:{backend}:{mode}"


RUNNING_INDEX = f"{PREFIX}:running"
"""A sorted set of the turn jobs (generation and switch) that workers hold, scored by claim time:
where tasks/orphans.py looks for jobs left running with no lease."""
QUEUED_COUNT = f"{PREFIX}:queued"  # jobs admitted against QUEUE_MAX and not yet claimed or canceled


def serving_key(backend: str) -> str:
    """A hash worker -> "mode|expires_ms|state": which mode each live worker of the backend serves."""
    return f"{PREFIX}:serving:{backend}"


def servers_key(backend: str) -> str:
    """A hash mode -> live servers and "mode|idle" -> idle ones, kept with serving_key in the same steps."""
    return f"{PREFIX}:servers:{backend}"


def allocator_key(backend: str) -> str:
    """The lease of the backend's elected allocator (its holder's name, with an expiry)."""
    return f"{PREFIX}:allocator:{backend}"


def summary_key(backend: str) -> str:
    """The allocator's latest view of the backend's backlog, per mode, as JSON (tasks/allocator.py)."""
    return f"{PREFIX}:summary:{backend}"


def result_object_key(job_id: str, index: int = 0) -> str:
    """Where image ``index`` of a generation job is stored (the first keeps the one-image name)."""
    return f"jobs/{job_id}.png" if index == 0 else f"jobs/{job_id}-{index}.png"


MODEL_HASHES = f"{PREFIX}:model_hashes"  # model name under the model root -> A1111's short hash, from workers


def input_object_key(sha256: str) -> str:
    """Uploaded input images are stored once per content, under their SHA-256."""
    return f"inputs/{sha256}.png"


GENERATE_TASK = "dreamlab.generate"
SWITCH_TASK = "dreamlab.switch_mode"
CUSTOM_TASK = "dreamlab.custom"
CUSTOM_QUEUE = "custom"  # every worker consumes it; handlers are not bound to a mode
