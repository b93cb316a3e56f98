"""gunicorn's settings for the API, read from the working directory: the access log on (stdout),
both logs in LOG_FORMAT's format."""

accesslog = "-"
logger_class = "api.gunicorn_logger.Logger"
