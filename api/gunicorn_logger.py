"""gunicorn's logger for the API: its error and access logs in LOG_FORMAT's format (jobs/logs.py)."""

from __future__ import annotations

from gunicorn import glogging

from jobs.logs import formatter, log_format


class Logger(glogging.Logger):
    """gunicorn's own logger; under LOG_FORMAT=json each of its lines is one JSON object."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if log_format() == "json":
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(formatter())
