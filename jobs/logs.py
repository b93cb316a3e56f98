"""Log setup shared by the API and the workers: ``LOG_FORMAT=text`` (default) or ``json``.

JSON lines carry ``time``, ``level``, ``logger``, ``message`` and, when the message names a
job (``job <id>: ...``, as every job log line does), ``job_id``; a traceback goes in
``exc_info``.  The standard library's formatter is enough for that, so no dependency.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JOB = re.compile(r"\bjob ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


class JsonFormatter(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        found = _JOB.search(message)
        if found:
            line["job_id"] = found.group(1)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line)


def log_format() -> str:
    value = os.environ.get("LOG_FORMAT", "text").strip().lower() or "text"
    if value not in ("text", "json"):
        raise SystemExit(f"LOG_FORMAT={value!r}: use text or json")
    return value


def formatter() -> logging.Formatter:
    return JsonFormatter() if log_format() == "json" else logging.Formatter(TEXT_FORMAT)


# Celery's own line when a task arrives and when it succeeds: the job's transition lines say both, with
# its id and mode, so a job logs three lines, not five (and a worker formats two fewer a job).
CELERY_TASK_LINES = ("celery.worker.strategy", "celery.app.trace")


def quiet_celery_task_lines() -> None:
    """Keep Celery's per-task lines at WARNING: its warnings and errors about a task still show."""
    for name in CELERY_TASK_LINES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: int = logging.INFO) -> None:
    """Log to stderr at ``level`` in the LOG_FORMAT format (once per process; later calls do nothing)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter())
    root.addHandler(handler)
    root.setLevel(level)
