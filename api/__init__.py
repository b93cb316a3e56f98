"""The Flask API.  It never imports torch: jobs reach workers by task name only."""

from __future__ import annotations

import redis
from celery import Celery
from flask import Blueprint, Flask

from api import auth, cancel, custom, docs, events, joblist, jobs, legacy, metrics, modes, page, status, superres
from api.compat import a1111, openai
from api.errors import JSONProvider, register_error_handlers
from api.keystore import KeyStore
from api.limits import KeyLimits, LimitSettings
from api.services import Services
from api.streams import EXTENSION as STREAMS_EXTENSION
from api.streams import StreamHub, StreamSettings, redis_connections
from api.superres_fields import EXTENSION as SUPERRES_EXTENSION
from api.webhook_fields import EXTENSION as WEBHOOKS_EXTENSION
from config import Settings, SuperResSettings
from jobs import logs
from jobs.producer import Producer
from jobs.records import JobRecords
from modes.registry import ModesRegistry
from modes.watch import reload_on_sighup, watch_file
from storage import store_from
from webhooks.policy import WebhookSettings


def make_producer() -> Producer:
    """A producer-only Celery app: the API sends tasks by name."""
    app = Celery("dreamlab-api")
    app.config_from_object("celeryconfig")
    return Producer(app)


def blueprints() -> tuple[Blueprint, ...]:
    """Every route of the API; each view has its schema in the OpenAPI document (api/openapi.py)."""
    return (
        *(jobs.bp, cancel.bp, legacy.bp, modes.bp, status.bp, custom.bp, superres.bp, metrics.bp, docs.bp),
        *(joblist.bp, events.bp, page.bp),
        *(a1111.bp, openai.bp),
    )


def limit_settings(settings: Settings) -> LimitSettings:
    return LimitSettings(
        settings.key_rate, settings.key_burst, settings.key_jobs_max, settings.retry_after, settings.key_jobs_per_day
    )


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json = JSONProvider(app)
    app.json.sort_keys = False
    # Refused from the Content-Length alone, before the body is read; uploads set their own cap (api/uploads.py).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_json_bytes
    client = redis.Redis.from_url(settings.redis_url, max_connections=redis_connections())
    registry = ModesRegistry(client, settings.modes_file)
    reloaded = registry.reload()
    if reloaded.error and reloaded.version == 0:
        raise SystemExit(f"the API cannot start: {reloaded.error}")
    if settings.modes_watch:
        watch_file(settings.modes_file, registry.reload)
    reload_on_sighup(registry.reload)
    app.extensions["dreamlab"] = Services(
        settings=settings,
        redis=client,
        records=JobRecords(client, settings.job_ttl),
        store=store_from(settings),
        registry=registry,
        producer=make_producer(),
        keys=KeyStore(client),
        limits=KeyLimits(client, limit_settings(settings)),
    )
    app.extensions[SUPERRES_EXTENSION] = SuperResSettings.from_env()
    app.extensions[STREAMS_EXTENSION] = StreamHub(client, StreamSettings.from_env())
    app.extensions[WEBHOOKS_EXTENSION] = WebhookSettings.from_env()
    register_error_handlers(app)
    auth.install(app)
    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    logs.configure()
    return app
