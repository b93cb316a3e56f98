"""The workers' Celery app, configured from celeryconfig.py."""

from celery import Celery

app = Celery("dreamlab", include=["tasks.generate", "tasks.superres"])
app.config_from_object("celeryconfig")
