"""Our task messages (jobs/producer.py) against what kombu itself publishes, on a real Redis."""

from __future__ import annotations

import base64
import json

from celery import Celery

from api import make_producer
from jobs.producer import shown


def test_the_envelope_matches_kombus_own(redis_server):
    payload = {"job_id": "j1", "params": {"prompt": "a cat"}}
    ours = json.loads(make_producer().message("dreamlab.generate", payload, "gen.torch.demo", "j1").envelope)
    reference = Celery("reference", broker=redis_server.url)
    reference.config_from_object("celeryconfig")
    reference.conf.broker_url = redis_server.url
    reference.send_task(
        "dreamlab.generate",
        args=[payload],
        queue="gen.torch.demo",
        task_id="j1",
        ignore_result=True,
        argsrepr=shown(payload),
        kwargsrepr="{}",
    )
    theirs = json.loads(redis_server.client().lpop("gen.torch.demo"))

    assert ours.keys() == theirs.keys()
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    assert ours["headers"].keys() == theirs["headers"].keys()
    varying = {"origin"}  # the sending process
    assert {k: v for k, v in ours["headers"].items() if k not in varying} == {
        k: v for k, v in theirs["headers"].items() if k not in varying
    }
    # send_task copies the repr options into the properties as well; workers read them from the headers.
    theirs["properties"] = {k: v for k, v in theirs["properties"].items() if k not in ("argsrepr", "kwargsrepr")}
    assert ours["properties"].keys() == theirs["properties"].keys()
    varying = {"delivery_tag", "reply_to"}  # unique per message; reply_to serves result backends, which we do not use
    assert {k: v for k, v in ours["properties"].items() if k not in varying} == {
        k: v for k, v in theirs["properties"].items() if k not in varying
    }


def test_events_show_the_job_and_its_mode_not_its_prompt():
    payload = {"job_id": "j1", "mode": {"name": "demo", "model_path": "sd15"}, "params": {"prompt": "a secret cat"}}
    message = make_producer().message("dreamlab.generate", payload, "gen.torch.demo", "j1")
    headers = json.loads(message.envelope)["headers"]
    assert headers["argsrepr"] == "({'job_id': 'j1', 'mode': 'demo'},)"
    assert "secret" not in json.dumps(headers)
