"""api/streams.py's StreamHub on a real redis-server: events reach the streams of their job only,
and SSE_MAX_STREAMS is exact."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import redis

from api.errors import ApiError
from api.streams import StreamHub, StreamSettings
from jobs import events


def test_events_reach_only_their_jobs_streams(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    hub = StreamHub(client, StreamSettings(keepalive=1, max_streams=4))
    with hub.listen("job-a") as a, hub.listen("job-a") as a2, hub.listen("job-b") as b:
        events.publish(client, "job-a", "progress", step=1, total=4)
        events.publish(client, "job-b", "running")
        assert a.get(timeout=10) == a2.get(timeout=10) == {"event": "progress", "step": 1, "total": 4}
        assert b.get(timeout=10) == {"event": "running"}
        assert a.empty() and b.empty()


def test_sse_max_streams_is_the_number_open_at_once(redis_server):
    hub = StreamHub(redis.Redis.from_url(redis_server.url), StreamSettings(keepalive=1, max_streams=2))
    with ExitStack() as held:
        held.enter_context(hub.listen("job-a"))
        held.enter_context(hub.listen("job-b"))
        with pytest.raises(ApiError) as refused:
            held.enter_context(hub.listen("job-c"))
        assert refused.value.status == 503 and "SSE_MAX_STREAMS=2" in refused.value.message
        assert hub.open_streams == 2
    assert hub.open_streams == 0
    with hub.listen("job-c"):
        assert hub.open_streams == 1
