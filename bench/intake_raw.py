"""The baseline of bench/intake.py: a Flask route that validates nothing and sends the job's Celery
message with a producer-only client, served like the API (gunicorn 'bench.intake_raw:app')."""

from __future__ import annotations

import uuid

from celery import Celery
from flask import Flask, jsonify, request

from jobs.keys import GENERATE_TASK

QUEUE = "gen.torch.bench"
MODE = {"name": "bench", "model_path": "/models/bench", "scheduler": "lcm", "backend": "torch", "loras": []}

celery = Celery("dreamlab-raw")
celery.config_from_object("celeryconfig")
app = Flask(__name__)


@app.post("/api/jobs")
def submit():
    job_id = str(uuid.uuid4())
    payload = {"job_id": job_id, "mode": MODE, "params": request.get_json(silent=True), "superres": None}
    celery.send_task(GENERATE_TASK, args=[payload], queue=QUEUE, task_id=job_id, ignore_result=True)
    return jsonify({"id": job_id, "status": "queued"}), 202
