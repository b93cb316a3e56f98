"""gunicorn's settings for the API, read from the working directory: the access log on (stdout),
both logs in LOG_FORMAT's format, no open API beyond loopback (api/exposure.py), and gthread workers.

gthread, because an event stream (GET /api/jobs/<id>/events) holds a thread for as long as it
lasts: API_THREADS threads per process, of which at most SSE_MAX_STREAMS serve streams, so the
rest keep answering ordinary requests (docs/benchmarks.md, bench/streams.py)."""

import os

from api import exposure

accesslog = "-"
logger_class = "api.gunicorn_logger.Logger"
worker_class = "gthread"
threads = int(os.environ.get("API_THREADS") or 64)


def on_starting(server) -> None:
    warning = exposure.check(server.cfg.bind, os.environ)
    if warning:
        server.log.warning(warning)
