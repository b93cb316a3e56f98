"""Turn a job record into the JSON a client sees."""

from __future__ import annotations

from typing import Any

from flask import url_for

from jobs.records import CANCELED, FAILED, SUCCEEDED

_PASSTHROUGH = ("id", "kind", "status", "mode", "params", "created_at", "started_at", "finished_at", "attempts")


def public_job(record: dict[str, Any]) -> dict[str, Any]:
    view = {k: record[k] for k in _PASSTHROUGH if k in record}
    if record.get("progress"):
        view["progress"] = record["progress"]
    if "cancel_requested" in record:
        view["cancel_requested"] = True
    if record["status"] == SUCCEEDED:
        result = {k: v for k, v in record["result"].items() if k != "key"}
        if "key" in record["result"]:
            result["url"] = url_for("jobs.job_result", job_id=record["id"])
        if "images" in result:
            result["images"] = [
                {"seed": image["seed"], "url": image_url(record["id"], index)}
                for index, image in enumerate(result["images"])
            ]
        view["result"] = result
    elif record["status"] in (FAILED, CANCELED):
        view["error"] = record["error"]
    return view


def image_url(job_id: str, index: int) -> str:
    """Where image ``index`` of a job is served (the first is the job's one result URL)."""
    if index == 0:
        return url_for("jobs.job_result", job_id=job_id)
    return url_for("jobs.job_image", job_id=job_id, index=index)
