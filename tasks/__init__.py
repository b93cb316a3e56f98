"""Celery tasks that run jobs on workers.  ``celery -A tasks worker`` finds ``app`` here."""

from tasks.celery_app import app

__all__ = ["app"]
