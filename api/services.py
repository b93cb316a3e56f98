"""What the API's views share: settings, Redis, job records, the store, modes and the producer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from flask import current_app, g, has_request_context

from api.caller import owner_name
from api.errors import ApiError
from api.keystore import KeyStore
from api.limits import KeyLimits
from api.webhook_fields import Webhook
from config import Settings
from jobs import webhooks
from jobs.keys import CUSTOM_QUEUE, CUSTOM_TASK, GENERATE_TASK, SWITCH_TASK, arrivals_key, mode_queue, waiting_key
from jobs.messages import CustomJob, GenerateJob, GenerateParams, SwitchJob
from jobs.producer import Producer
from jobs.records import JobRecords, Turn
from jobs.superres import SuperResOptions
from modes import Mode, ModesConfig
from modes.registry import ModesRegistry
from modes.roots import message
from storage import ObjectStore

# Job parameters the worker needs but a caller is not shown: file names under the hosts' roots.
PRIVATE_PARAMS = ("controlnet_path",)


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    records: JobRecords
    store: ObjectStore
    registry: ModesRegistry
    producer: Producer
    keys: KeyStore
    limits: KeyLimits

    @property
    def modes(self) -> ModesConfig:
        """The fleet's current modes config (hot-reloaded), read once per request: a request sees one config."""
        if not has_request_context():
            return self.registry.current()
        if "dreamlab_modes" not in g:
            g.dreamlab_modes = self.registry.current()
        return g.dreamlab_modes

    def queues(self, modes: ModesConfig | None = None) -> dict[str, str]:
        """Mode name -> its generation queue (under ROUTER=fifo, modes of a backend share one)."""
        modes = modes or self.modes
        return {m.name: mode_queue(self.settings.router, m.backend, m.name) for m in modes.modes.values()}

    def queue_depths(self, modes: ModesConfig | None = None) -> dict[str, int]:
        """Mode name -> how many of its jobs wait (from its waiting set: exact under either router)."""
        modes = modes or self.modes
        pipe = self.redis.pipeline()
        for m in modes.modes.values():
            pipe.zcard(waiting_key(m.backend, m.name))
        return dict(zip(modes.modes, pipe.execute(), strict=True))

    def submit_generation(
        self,
        mode: Mode,
        params: GenerateParams,
        superres: SuperResOptions | None = None,
        uploads: dict[str, bytes] | None = None,
        webhook: Webhook | None = None,
    ) -> dict[str, Any]:
        """Record and enqueue a generation job (then SR, if asked), its uploads (object key -> PNG bytes)
        stored first, or raise ApiError having enqueued nothing."""
        if superres and params.n > 1:
            raise ApiError(400, "superres upscales a job of one image: send n=1 with superres", "n")
        job = GenerateJob(job_id=str(uuid.uuid4()), mode=message(mode), params=params, superres=superres)
        payload = job.to_dict()
        shown = {k: v for k, v in payload["params"].items() if k not in PRIVATE_PARAMS}
        record_params = {**shown, **({"superres": payload["superres"]} if superres else {})}
        return self._submit(
            job.job_id, "generate", mode, GENERATE_TASK, payload, record_params, uploads, params.priority, webhook
        )

    def submit_switch(self, mode: Mode, webhook: Webhook | None = None) -> dict[str, Any]:
        """Queue a mode switch behind the jobs already queued for the mode."""
        job = SwitchJob(job_id=str(uuid.uuid4()), mode=message(mode))
        return self._submit(job.job_id, "switch", mode, SWITCH_TASK, job.to_dict(), {}, webhook=webhook)

    def submit_custom(self, handler: str, args: dict[str, Any], webhook: Webhook | None = None) -> dict[str, Any]:
        """Queue a registered custom handler on the custom-job queue."""
        job = CustomJob(job_id=str(uuid.uuid4()), handler=handler, args=args)
        params = {"handler": handler, "args": args}
        return self._submit(job.job_id, "custom", None, CUSTOM_TASK, job.to_dict(), params, webhook=webhook)

    def _submit(
        self,
        job_id: str,
        kind: str,
        mode: Mode | None,
        task: str,
        payload: dict[str, Any],
        params: dict,
        uploads: dict[str, bytes] | None = None,
        priority: int = 0,
        webhook: Webhook | None = None,
    ) -> dict[str, Any]:
        """Store the job's uploads, then record and enqueue it in one atomic step (a mode's job joins its
        waiting set in the same step)."""
        queue = mode_queue(self.settings.router, mode.backend, mode.name) if mode else CUSTOM_QUEUE
        waiting = waiting_key(mode.backend, mode.name) if mode else None
        turn = Turn(waiting, priority * self.settings.priority_aging, payload) if waiting else None
        # Stored first: a worker may take the job the moment it is admitted.
        try:
            self._store_uploads(uploads or {})
        except Exception as exc:
            raise ApiError(503, f"could not store the job's input image ({exc}); check STORE_URL") from exc
        message = self.producer.message(task, payload, queue, job_id)
        name = mode.name if mode else ""
        owner = owner_name()
        arrivals = arrivals_key(mode.backend, mode.name) if mode else ""  # its mode's arrival rate counts it
        with self.webhook_registered(job_id, webhook), self.limits.job_place(owner, job_id):
            record, depth = self.records.create(
                job_id, kind, name, params, [], self.settings.queue_max, turn, message, True, owner, arrivals
            )
            if record is None:
                raise ApiError(
                    429,
                    f"{depth} jobs are waiting (QUEUE_MAX={self.settings.queue_max}); retry later",
                    headers={"Retry-After": str(self.settings.retry_after)},
                )
        current_app.logger.info("job %s: %s queued on %s", job_id, kind, queue)
        return record

    @contextmanager
    def webhook_registered(self, job_id: str, webhook: Webhook | None) -> Iterator[None]:
        """Register ``webhook`` around the job's admission: before it, since the first event may come at
        once; a job refused admission (429 or an error) leaves no registration behind."""
        if not webhook:
            yield
            return
        webhooks.register(self.redis, job_id, webhook.url, webhook.events, self.settings.job_ttl)
        try:
            yield
        except BaseException:
            webhooks.unregister(self.redis, job_id)
            raise

    def _store_uploads(self, uploads: dict[str, bytes]) -> None:
        """Inputs are stored under their content hash: one already there is the same bytes."""
        for key, data in uploads.items():
            if not self.store.exists(key):
                self.store.put(key, data, "image/png")


def services() -> Services:
    return current_app.extensions["dreamlab"]
