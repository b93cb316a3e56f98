"""A producer-only Celery client: the API sends tasks by name and never imports tasks/."""

from celery import Celery


def make_producer() -> Celery:
    producer = Celery("dreamlab-api")
    producer.config_from_object("celeryconfig")
    return producer
