"""gunicorn's settings for the API, read from the working directory: the access log on (stdout),
both logs in LOG_FORMAT's format, and no open API beyond loopback (api/exposure.py)."""

import os

from api import exposure

accesslog = "-"
logger_class = "api.gunicorn_logger.Logger"


def on_starting(server) -> None:
    warning = exposure.check(server.cfg.bind, os.environ)
    if warning:
        server.log.warning(warning)
