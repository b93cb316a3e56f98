"""A deployment's own custom handlers, loaded through CUSTOM_HANDLER_MODULES in the tests."""

import time
from pathlib import Path

from workers.custom_handlers import handler


@handler("add")
def add(args, context):
    numbers = args.get("numbers")
    if not isinstance(numbers, list) or not all(isinstance(n, (int, float)) for n in numbers):
        raise ValueError("args.numbers must be a list of numbers")
    return {"sum": sum(numbers)}


@handler("hold")
def hold(args, context):
    """Keep the worker busy until the file ``args.until`` exists: a job the test ends when it chooses."""
    release = Path(args["until"])
    deadline = time.monotonic() + float(args.get("timeout", 300))
    while not release.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {context.job_id}: {release} did not appear")
        time.sleep(0.05)
    return {"released": str(release)}
