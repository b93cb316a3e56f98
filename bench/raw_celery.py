"""The baseline for bench/overhead.py: a bare Celery task with a Redis result backend."""

import os

from celery import Celery

app = Celery("raw", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.worker_prefetch_multiplier = 1


@app.task(name="bench.noop")
def noop() -> int:
    return 0
