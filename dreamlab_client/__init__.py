"""A small client for the Dream Lab HTTP API, used by the ``dreamlab`` CLI and importable by other programs.

    from dreamlab_client import Client
    client = Client()                       # DREAMLAB_URL, DREAMLAB_KEY
    job = client.submit(prompt="a lighthouse", seed=1)
    done = client.wait(job["id"], on_event=print)
    open("out.png", "wb").write(client.result(job["id"]))

It speaks HTTP only (requests): no import of the server's modules, no torch.  Every refused
request raises ApiError with the API's own message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from dreamlab_client.sse import Event, parse

DEFAULT_URL = "http://127.0.0.1:4200"
TERMINAL = ("succeeded", "failed", "canceled")
__all__ = ["DEFAULT_URL", "TERMINAL", "ApiError", "Client", "Event"]


class ApiError(Exception):
    """A refused request (``status`` is the HTTP status, 0 when the API was not reached)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class Client:
    def __init__(self, url: str | None = None, key: str | None = None, timeout: float = 60) -> None:
        self.url = (url or os.environ.get("DREAMLAB_URL") or DEFAULT_URL).rstrip("/")
        self.key = key if key is not None else os.environ.get("DREAMLAB_KEY") or None
        self.timeout = timeout
        self._session = requests.Session()
        if self.key:
            self._session.headers["Authorization"] = f"Bearer {self.key}"

    def submit(self, **body: Any) -> dict[str, Any]:
        """Queue a generation job (the fields of ``POST /api/jobs``; None values are left out)."""
        return self._json("POST", "/api/jobs", json={k: v for k, v in body.items() if v is not None})

    def superres(self, image: Path, magnitude: int = 1, out_format: str = "png", quality: int | None = None) -> dict:
        form = {"magnitude": str(magnitude), "out_format": out_format, **({"quality": str(quality)} if quality else {})}
        with open(image, "rb") as file:
            return self._json("POST", "/api/superres", data=form, files={"file": (image.name, file)})

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/jobs/{job_id}")

    def jobs(self, **query: Any) -> dict[str, Any]:
        """A page of ``GET /api/jobs`` (status, mode, kind, limit, cursor)."""
        return self._json("GET", "/api/jobs", params={k: v for k, v in query.items() if v is not None})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/jobs/{job_id}/cancel")

    def result(self, job_id: str) -> bytes:
        return self._request("GET", f"/api/jobs/{job_id}/result").content

    def modes(self) -> dict[str, Any]:
        return self._json("GET", "/api/modes")

    def switch(self, mode: str) -> dict[str, Any]:
        return self._json("POST", "/api/modes/switch", json={"mode": mode})

    def reload(self) -> dict[str, Any]:
        return self._json("POST", "/api/modes/reload")

    def fleet(self) -> dict[str, Any]:
        return self._json("GET", "/api/models/status")

    def events(self, job_id: str) -> Iterator[Event]:
        """The job's event stream (comments left out); it ends after the terminal event."""
        response = self._request("GET", f"/api/jobs/{job_id}/events", stream=True, timeout=(10, None))
        with response:
            for event in parse(response.iter_lines(decode_unicode=True)):
                if event.name:
                    yield event

    def wait(
        self,
        job_id: str,
        on_event: Callable[[Event], None] | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> dict[str, Any]:
        """The job once it ended, reporting each event to ``on_event``: from the event stream, or by
        polling when the stream is unavailable (an API without it, or one that has no place left)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for event in self.events(job_id):
                if on_event:
                    on_event(event)
                if event.name in TERMINAL:
                    return event.data
        except ApiError as exc:
            if exc.status not in (404, 405, 503) or self._gone(job_id):
                raise
        except requests.RequestException:
            pass
        return self._poll(job_id, on_event, deadline, poll)

    def _gone(self, job_id: str) -> bool:
        try:
            self.job(job_id)
        except ApiError as exc:
            return exc.status == 404
        return False

    def _poll(
        self, job_id: str, on_event: Callable[[Event], None] | None, deadline: float | None, poll: float
    ) -> dict[str, Any]:
        while True:
            job = self.job(job_id)
            if on_event:
                progress = job.get("progress")
                on_event(Event("progress", {"id": job_id, **progress}) if progress else Event(job["status"], job))
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(0, f"job {job_id} did not end in time; it is {job['status']}")
            time.sleep(poll)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._request(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self._session.request(method, self.url + path, **kwargs)
        except requests.ConnectionError as exc:
            raise ApiError(0, f"cannot reach the Dream Lab API at {self.url} (DREAMLAB_URL): {exc}") from None
        except requests.RequestException as exc:
            raise ApiError(0, f"request to {self.url}{path} failed: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response


def _error(response: requests.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, error["message"], error.get("field"))
    except (ValueError, KeyError, TypeError):
        return ApiError(response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")
