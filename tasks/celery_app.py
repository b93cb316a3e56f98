"""The workers' Celery app, configured from celeryconfig.py, on kombu's Redis transport with
one client per channel (tasks/transport.py)."""

from celery import Celery

from tasks import transport

transport.register()
app = Celery("dreamlab", include=["tasks.generate", "tasks.superres"])
app.config_from_object("celeryconfig")
