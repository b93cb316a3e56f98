"""Run one job on a worker: lease, work, store, record."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

import redis
from PIL import Image

from jobs.keys import MODEL_HASHES, result_object_key, waiting_key
from jobs.messages import CustomJob, GenerateJob, ResolvedMode, SwitchJob
from jobs.model_hash import model_hash, prefetch
from jobs.records import CLAIMED, ENDED, GONE, RUNNING, JobRecords
from jobs.superres import generated_key
from jobs.wording import choices
from modes.roots import ModelRoots
from storage import ObjectStore
from tasks.cancel import JobCanceled, check_canceled, end_canceled, step_reporter
from tasks.lease import Lease, hold_message
from tasks.redis_wait import until_redis_answers
from tasks.superres_handoff import hand_off
from tasks.turns import ModeJob, Turns
from workers import Backend, Generated, StepCallback
from workers.custom_handlers import HANDLERS, HandlerContext
from workers.errors import JobError
from workers.png import a1111_parameters, encode_png

log = logging.getLogger(__name__)
J = TypeVar("J", GenerateJob, SwitchJob)
GENERATE = "generate"  # the stage a generation delivery runs; hand_off moves a job on to "superres"


class JobRunner:
    """Everything a worker process needs to run jobs, built once per process."""

    def __init__(
        self,
        client: redis.Redis,
        records: JobRecords,
        store: ObjectStore,
        backend: Backend,
        lease_ttl: float,
        turns: Turns,
    ) -> None:
        self.redis = client
        self.turns = turns
        self.records = records
        self.store = store
        self.backend = backend
        self.lease_ttl = lease_ttl
        self._running: list[str] = []  # several at once under the threads pool (rknn NUM_WORKERS)
        self._running_lock = threading.Lock()
        self._deliveries = 0  # deliveries holding a pool thread: running a job, or waiting on another's lease
        self.switches = 0  # how often a job found another mode loaded: the router's cost
        self.on_switch_job: Callable[[str], None] | None = None  # told the mode a switch job loaded
        # Resolves a message's model and LoRA names on this host (modes/roots.py); None: paths used as given.
        self.roots: ModelRoots | None = None
        self._last_located: tuple[ResolvedMode, ResolvedMode] | None = None  # a message's mode, resolved here
        self._hashes_published: dict[str, str] = {}  # model name -> the short hash this process published

    def turn(self, job: ModeJob, worker: str, delivery_tag: str | None) -> str:
        """Run the turn that a delivery of ``job`` gives its mode: the mode's first waiting job
        (and compatible ones with it), ``job`` itself when it is first (tasks/turns.py)."""
        waiting = waiting_key(job.mode.backend, job.mode.name)
        with self._delivery():
            taken = until_redis_answers(
                lambda first: self._take_turn(job, worker, delivery_tag, waiting, count=first),
                job.job_id,
                partial(hold_message, self.redis, delivery_tag),
            )
            if taken is None:
                return "dropped"
            lead, lease = taken
            outcome = self._start(lead, lease, worker, waiting)
        return outcome if lead.job_id == job.job_id else f"ran job {lead.job_id}, first in its mode: {outcome}"

    def _take_turn(
        self, job: ModeJob, worker: str, delivery_tag: str | None, waiting: str, count: bool
    ) -> tuple[ModeJob, Lease] | None:
        """Claim the job that this delivery's turn runs, with its lease; None when no job waits for it.
        ``count``: count the delivery in ``job``'s record (its first try only)."""
        guarding = True  # this delivery is the message of ``job`` that takes it over should its holder die
        ended: int | None = None  # what claiming ``job`` itself answered, once it said ENDED or GONE
        look = self.turns.look(job, waiting, count=count)
        while True:
            if look.orphaned and guarding:
                candidates: list[ModeJob] = [job]
            else:
                if look.held and guarding and look.first:
                    self.turns.publish_again(job)
                    guarding = False
                candidates = look.first
            for lead in candidates:
                lease = Lease(self.redis, lead.job_id, self.lease_ttl, delivery_tag)
                code = self._claim_waiting(lead.job_id, lease, worker, waiting)
                mine = lead.job_id == job.job_id
                if code in (ENDED, GONE) and mine:
                    guarding = False  # it ended, or moved on to its super-resolution stage: nothing to guard
                    ended = code
                if code != CLAIMED:
                    continue  # another worker took it first
                if not mine:
                    log.info("job %s: this delivery runs job %s, first in its mode", job.job_id, lead.job_id)
                return lead, lease
            if look.held and guarding:
                log.info("job %s: another worker holds the lease; waiting for it to finish or die", job.job_id)
                hold_message(self.redis, delivery_tag)
                time.sleep(self.lease_ttl / 3)
            elif not candidates:
                why = _why_dropped(ended, look.status)
                log.info("job %s: %s; dropping this delivery (no job waits in its mode)", job.job_id, why)
                return None
            look = self.turns.look(job, waiting, count=False)

    def _start(self, lead: ModeJob, lease: Lease, worker: str, waiting: str) -> str:
        """Run the claimed ``lead``: a switch, or a generation with any compatible companions."""
        if isinstance(lead, SwitchJob):
            what = f"switch to mode {lead.mode.name!r}"
            return self._run(lead.job_id, what, worker, lease, self._loader(lead, worker))
        return self._generation(lead, lease, worker, waiting)

    def _loader(self, job: SwitchJob, worker: str) -> Callable[[Lease], dict[str, Any]]:
        def load(lease: Lease) -> dict[str, Any]:
            seconds = self.backend.prepare(self._located(job).mode, job.job_id)
            if self.on_switch_job:
                self.on_switch_job(job.mode.name)
            return {"mode": job.mode.name, "worker": worker, "load_seconds": round(seconds, 4)}

        return load

    def _generation(self, lead: GenerateJob, lease: Lease, worker: str, waiting: str) -> str:
        members = [(lead, lease), *self._claim_companions(lead, worker, waiting)]
        if len(members) > 1:
            return self._run_batch(members, worker)

        def work(lease: Lease) -> dict[str, Any] | str:
            began = time.perf_counter()
            located = self._located(lead)
            prefetch(located.mode.model_path)  # the infotext's Model hash, beside the pipeline
            result = self._generate(lead, located, lease)
            if not lead.superres:
                return result
            result["run_seconds"] = round(time.perf_counter() - began, 4)
            return hand_off(lead, lease, result, self.records)  # the SR worker completes the job

        return self._run(lead.job_id, f"mode {lead.mode.name!r}", worker, lease, work)

    def _claim_companions(self, lead: GenerateJob, worker: str, waiting: str) -> list[tuple[GenerateJob, Lease]]:
        claimed = []
        for other in self.turns.companions(lead, waiting):
            if len(claimed) + 1 >= self.turns.batch_max:
                break
            lease = Lease(self.redis, other.job_id, self.lease_ttl)
            if self._claim_waiting(other.job_id, lease, worker, waiting) == CLAIMED:
                claimed.append((other, lease))
        return claimed

    def _claim_waiting(self, job_id: str, lease: Lease, worker: str, waiting: str) -> int:
        """Claim a job of ``waiting`` (its mode's waiting set) for its generation stage with ``lease``."""
        return lease.claimed(self.records.claim(job_id, lease.token, worker, self.lease_ttl, waiting, GENERATE))

    def custom(self, job: CustomJob, worker: str, delivery_tag: str | None) -> str:
        def call(lease: Lease) -> dict[str, Any]:
            if job.handler not in HANDLERS:
                raise JobError(f"this worker has no custom handler {job.handler!r}; it has {choices(sorted(HANDLERS))}")
            output = HANDLERS[job.handler](job.args, HandlerContext(job.job_id, self.backend))
            return {"handler": job.handler, "worker": worker, "output": output}

        lease = Lease(self.redis, job.job_id, self.lease_ttl, delivery_tag)
        hold = partial(hold_message, self.redis, delivery_tag)
        with self._delivery():
            if not until_redis_answers(lambda _: self._acquire(job.job_id, worker, lease), job.job_id, hold):
                return "dropped"
            return self._run(job.job_id, f"custom handler {job.handler!r}", worker, lease, call)

    def _acquire(self, job_id: str, worker: str, lease: Lease) -> bool:
        """Claim the delivered custom job, waiting while a live holder runs it; False when it needs no run."""
        code = lease.acquire(lambda token: self.records.claim(job_id, token, worker, self.lease_ttl))
        if code != CLAIMED:
            why = "its record expired" if code == GONE else "it already ended"
            log.info("job %s: %s; dropping this delivery", job_id, why)
        return code == CLAIMED

    def _run(
        self,
        job_id: str,
        what: str,
        worker: str,
        lease: Lease,
        work: Callable[[Lease], dict[str, Any] | str],
    ) -> str:
        """Run ``work`` under the claimed ``lease`` and end the job; return what happened.

        ``work`` returns the job's result, or what happened when it handed the job on to
        another stage (tasks/superres_handoff.py), which then ends it.
        """
        with lease:
            log.info("job %s: running %s on %s", job_id, what, worker)
            began = time.perf_counter()
            try:
                with self._busy(job_id):
                    check_canceled(lease)
                    result = work(lease)
            except JobCanceled as exc:
                return end_canceled(self.records, lease, exc)
            except Exception as exc:
                log.exception("job %s: %s failed", job_id, what)
                lease.end(self.records.fail, failure_message(what, exc))
                return "failed"
            if isinstance(result, str):
                return result
            result["run_seconds"] = round(time.perf_counter() - began, 4)
            if not self._succeed(lease, result):
                return "superseded"
            return "succeeded"  # its transition's line (jobs/metrics.py log_ended) says so, with the times

    def _run_batch(self, members: list[tuple[GenerateJob, Lease]], worker: str) -> str:
        """Compatible txt2img jobs in one pipeline call, each ending on its own lease.

        A cancel of one member stops reporting its progress and ends it ``canceled``
        after the call; the other members are not disturbed.
        """
        lead = members[0][0]
        what = f"mode {lead.mode.name!r}"
        with ExitStack() as stack:
            for _, lease in members:
                stack.enter_context(lease)
            names = ", ".join(job.job_id for job, _ in members)
            log.info("job %s: running %s as a batch of %d (%s) on %s", lead.job_id, what, len(members), names, worker)
            stopped: dict[str, JobCanceled] = {}
            for job, lease in members:
                try:
                    check_canceled(lease)
                except JobCanceled as exc:
                    stopped[job.job_id] = exc
            reporters = {job.job_id: step_reporter(self.records, job.job_id, lease.token) for job, lease in members}

            def on_step(done: int, total: int) -> None:
                for job_id, report in reporters.items():
                    if job_id not in stopped:
                        try:
                            report(done, total)
                        except JobCanceled as exc:
                            stopped[job_id] = exc

            began = time.perf_counter()
            try:
                with self._busy(lead.job_id):
                    located = [self._located(job) for job, _ in members]
                    images = self.backend.generate_batch(located, on_step)
            except Exception as exc:
                log.exception("job %s: batch of %s failed", lead.job_id, what)
                for _, lease in members:
                    lease.end(self.records.fail, failure_message(what, exc))
                return "failed"
            seconds = round(time.perf_counter() - began, 4)
            outcomes = []
            for (job, lease), where, generated in zip(members, located, images, strict=True):
                if job.job_id in stopped:
                    outcomes.append(end_canceled(self.records, lease, stopped[job.job_id]))
                    continue
                stored = self._store(job, where, [generated])
                ended = self._succeed(lease, {**stored, "run_seconds": seconds, "batch": len(members)})
                outcomes.append("succeeded" if ended else "superseded")
            log.info("job %s: batch of %d done in %.2fs", lead.job_id, len(members), seconds)
            return outcomes[0]  # the lead's: the delivery's task reports it

    @property
    def occupied(self) -> bool:
        """Whether a delivery holds one of this worker's threads: running a job, or waiting for another
        worker that holds its job's lease (which can last a lease's life). The router must not take
        such a worker for idle: it would move it while the thread that would serve the move is blocked."""
        with self._running_lock:
            return self._deliveries > 0

    @contextmanager
    def _delivery(self) -> Iterator[None]:
        with self._running_lock:
            self._deliveries += 1
        try:
            yield
        finally:
            with self._running_lock:
                self._deliveries -= 1

    @property
    def current_job(self) -> str | None:
        """The jobs this worker runs now, comma-separated; None when idle."""
        with self._running_lock:
            return ", ".join(self._running) or None

    @contextmanager
    def _busy(self, job_id: str) -> Iterator[None]:
        """Report ``job_id`` as running here while it runs; count a switch when it loaded another mode."""
        with self._running_lock:
            self._running.append(job_id)
        loaded = self.backend.loaded_mode
        try:
            yield
        finally:
            with self._running_lock:
                self._running.remove(job_id)
            if self.backend.loaded_mode != loaded:
                self.switches += 1

    def _located(self, job: J) -> J:
        """``job`` with its mode's files, and its ControlNet, resolved on this host (the message names them
        relative to the roots).

        Resolving checks every file of a model folder for links leading outside its root. A job of the mode
        the backend has loaded, with the same message, reuses the last resolution: its files were checked
        when they were loaded and are not read again. A job's ControlNet is not part of its mode's message:
        it is resolved for every job that names one.
        """
        if self.roots is None:
            return job
        last = self._last_located
        if last is None or last[0] != job.mode or self.backend.loaded_mode != job.mode.name:
            last = self._last_located = (job.mode, self.roots.locate(job.mode))
        located = replace(job, mode=last[1])
        if isinstance(located, GenerateJob) and located.params.controlnet_path:
            path = self.roots.locate_controlnet(job.mode.name, located.params.controlnet_path)
            located = replace(located, params=replace(located.params, controlnet_path=str(path)))
        return located

    def _succeed(self, lease: Lease, result: dict[str, Any]) -> bool:
        if lease.end(self.records.succeed, result):
            return True
        log.warning("job %s: finished but lost its lease; another worker owns the result", lease.job_id)
        return False

    def _generate(self, job: GenerateJob, located: GenerateJob, lease: Lease) -> dict[str, Any]:
        """Run ``job`` (``located``: the same job with its files resolved on this host) and store its images."""
        on_step = step_reporter(self.records, job.job_id, lease.token)
        inputs = self._inputs(job)
        if job.params.n == 1:
            return self._store(job, located, [self.backend.generate(located, on_step=on_step, **inputs)])
        return self._store(job, located, self._generate_images(located, on_step, inputs))

    def _generate_images(self, job: GenerateJob, on_step: StepCallback, inputs: dict[str, Any]) -> list[Generated]:
        """The images of a job of several: txt2img in pipeline calls of up to BATCH_MAX images, img2img one
        at a time; progress counts the steps of every call."""
        images = job.images()
        size = max(1, self.turns.batch_max) if job.params.init_image is None else 1
        chunks = [images[i : i + size] for i in range(0, len(images), size)]
        made: list[Generated] = []
        for index, chunk in enumerate(chunks):

            def report(done: int, total: int, index: int = index) -> None:
                on_step(index * total + done, len(chunks) * total)

            if len(chunk) == 1:
                made.append(self.backend.generate(chunk[0], on_step=report, **inputs))
            else:
                made.extend(self.backend.generate_batch(chunk, report))
        return made

    def _store(self, job: GenerateJob, located: GenerateJob, generated: list[Generated]) -> dict[str, Any]:
        """Write the job's PNGs to the store; the result fields of its record (the first image's at the top)."""
        images = []
        for index, (single, made) in enumerate(zip(located.images(), generated, strict=True)):
            key = generated_key(job.job_id) if job.superres else result_object_key(job.job_id, index)
            self.store.put(key, encode_png(made.image, a1111_parameters(single, made.sampler)), "image/png")
            images.append({"key": key, "seed": single.params.seed})
        first = generated[0]
        short_hash = model_hash(located.mode.model_path)
        if short_hash:
            self._publish_hash(job.mode.model_path, short_hash)
        return {
            "key": images[0]["key"],
            "seed": job.params.seed,
            "mode": job.mode.name,
            "width": first.image.width,
            "height": first.image.height,
            "sampler": first.sampler,
            "images": images,
            "model_hash": short_hash,
        }

    def _publish_hash(self, name: str, short_hash: str) -> None:
        """For the API's listings (/sdapi/v1/sd-models), by the model's name under the model root; written
        when this process first sees the model or its hash changes, not on every job."""
        if self._hashes_published.get(name) != short_hash:
            self.redis.hset(MODEL_HASHES, name, short_hash)
            self._hashes_published[name] = short_hash

    def _inputs(self, job: GenerateJob) -> dict[str, Any]:
        """The job's input images from the store, decoded; only those it has, so txt2img backends need none."""
        inputs = {}
        for field, key, form in (
            ("init_image", job.params.init_image, "RGB"),
            ("mask_image", job.params.mask_image, "L"),
            ("control_image", job.params.control_image, "RGB"),
        ):
            if key is not None:
                with Image.open(io.BytesIO(self.store.get(key))) as image:
                    inputs[field] = image.convert(form)
        return inputs


def _why_dropped(ended: int | None, status: str) -> str:
    """Why a delivery ends with no job to run, for its log line."""
    if ended == GONE or status == "":
        return "its record expired"
    if ended == ENDED or status != RUNNING:
        return "it already ended"
    return "it runs elsewhere"


def failure_message(what: str, exc: Exception) -> str:
    if isinstance(exc, JobError):
        return str(exc)
    if what.startswith("custom handler"):
        return f"{what} failed: {type(exc).__name__}: {exc}"
    return (
        f"{what} failed on the worker: {type(exc).__name__}: {exc}. "
        "Check that the mode's model, LoRA and ControlNet files exist on this worker host and are complete, "
        "then submit the job again."
    )
