"""The workers' Celery app, configured from celeryconfig.py, on kombu's Redis transport with
one client per channel (tasks/transport.py), sending task events in batches (tasks/event_batches.py)."""

from celery import Celery

from tasks import transport
from tasks.event_batches import BatchedTaskEvents

transport.register()
app = Celery("dreamlab", include=["tasks.generate", "tasks.superres"])
app.config_from_object("celeryconfig")
app.steps["consumer"].add(BatchedTaskEvents)
