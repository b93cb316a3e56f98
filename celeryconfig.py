"""Celery settings, one place.  Shared by the workers and the API's producer-only client."""

from config import Settings

_settings = Settings.from_env()

broker_url = _settings.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {
    # A job's worker keeps its message invisible while it lives (tasks/lease.py),
    # so this only bounds how long a dead worker's job waits before redelivery.
    "visibility_timeout": _settings.visibility_timeout,
    # A dead worker's messages go back to their queues once older than the visibility timeout,
    # found by a scan of kombu's unacked index. Under ROUTER=affinity the backend's allocator
    # scans for the fleet every 2 s (tasks/restore.py) and each worker only every visibility
    # timeout, in case no allocator runs; under fifo (no allocator) every worker every 2 s.
    # Every worker also scans once at start. Throttle 1: an interval's scan is not skipped.
    "unacked_restore_interval": 2 if _settings.router == "fifo" else max(2, _settings.visibility_timeout),
    "unacked_restore_throttle": 1,
    # The scan's lock outlives a worker killed (or a Redis restarted) while holding it; kombu's
    # 300 s default then stalls every redelivery for five minutes. A scan takes milliseconds.
    "unacked_mutex_expire": 10,
}

# Job state lives in our own Redis records (jobs/records.py), never in a result backend.
result_backend = None
task_ignore_result = True

task_serializer = "json"
accept_content = ["json"]

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_hijack_root_logger = False
# Task events feed Flower and `celery events` from a worker's start (no `enable_events` needed).
worker_send_task_events = True
task_send_sent_event = True
