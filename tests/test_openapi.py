"""The OpenAPI document is generated from the models, is valid, gives every route a schema, and agrees
with what the routes accept; /docs serves Swagger UI from the API itself."""

from __future__ import annotations

import base64
import io
import re

import pytest
import yaml
from flask import Flask
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from PIL import Image

from api.openapi import document, undocumented_routes
from api.services import services
from api.views import public_job


@pytest.fixture
def app(redis_server, modes_file, monkeypatch, tmp_path) -> Flask:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("STORE_URL", str(tmp_path / "store"))
    monkeypatch.setenv("MODES_FILE", str(modes_file))
    monkeypatch.setenv("MODES_WATCH", "0")
    from api import create_app

    return create_app()


def schema(doc: dict, name: str) -> OAS31Validator:
    """A validator of the document's component ``name``, its references resolved within the document."""
    return OAS31Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_served_document_is_valid_and_the_yaml_is_the_same(app):
    client = app.test_client()
    served = client.get("/api/openapi.json").get_json()
    validate(served)
    assert yaml.safe_load(client.get("/api/openapi.yaml").text) == served


def test_every_route_has_a_schema(app):
    served = {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    doc = document(app)
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert undocumented_routes(app) == []
    assert served == documented
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            assert operation["summary"] and not operation["summary"].endswith(">"), f"{method} {path}: no docstring"


def test_a_route_without_a_schema_is_caught(app):
    app.add_url_rule("/bare", "bare", lambda: "no schema")
    assert undocumented_routes(app) == ["['GET'] /bare"]


ACCEPTED = [
    {"prompt": "x"},
    {"prompt": "", "mode": None, "negative_prompt": None, "size": None, "num_inference_steps": None},
    {"prompt": "x", "guidance_scale": None, "seed": None, "priority": None, "init_image": None, "strength": None},
    {"prompt": "x", "mode": "slow", "size": "512x256", "num_inference_steps": 150, "guidance_scale": 30},
    {"prompt": "x", "seed": 0, "priority": -10, "num_inference_steps": 1, "guidance_scale": 0},
    {"prompt": "x", "seed": 2**32 - 1, "priority": 10, "superres": False, "superres_format": "jpeg"},
    {"prompt": "x", "superres_magnitude": 3, "superres_quality": 1, "superres": None},
    {"prompt": "x", "init_image": "PNG", "num_inference_steps": 4},
    {"prompt": "x", "init_image": "PNG", "strength": 1.0},
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_a_request_the_document_accepts_is_queued(app, body):
    body = {k: png() if v == "PNG" else v for k, v in body.items()}
    doc = document(app)
    schema(doc, "JobRequest").validate(body)
    response = app.test_client().post("/api/jobs", json=body)
    assert response.status_code == 202, response.get_json()
    schema(doc, "Job").validate(response.get_json())


def boundary_values(prop: dict) -> list:
    """The extreme values a property's schema allows: bounds, each enum value, booleans, null."""
    values = []
    for branch in prop.get("anyOf", [prop]):
        kind = branch.get("type")
        if kind in ("integer", "number"):
            values += [branch[k] for k in ("minimum", "maximum") if k in branch]
        elif "enum" in branch:
            values += branch["enum"]
        elif kind == "boolean":
            values += [True, False]
        elif kind == "null":
            values.append(None)
    return values


def test_every_bound_the_document_allows_is_queued(app):
    """Derived from the document, so a field added with a range the API does not honour fails here."""
    doc = document(app)
    properties = doc["components"]["schemas"]["JobRequest"]["properties"]
    base = {"prompt": "x", "mode": "slow", "size": "64x64"}  # slow: a mode without lcm's 50-step cap
    cases = [(name, value) for name, prop in properties.items() for value in boundary_values(prop)]
    assert len(cases) > 25
    client = app.test_client()
    for name, value in cases:
        body = {**base, name: value}
        if not schema(doc, "JobRequest").is_valid(body):
            continue  # strength without init_image: the document refuses it too
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 202, (name, value, response.get_json())


REFUSED = [
    ("JobRequest", "/api/jobs", {"prompt": "x", "mode": ""}, "mode"),
    ("JobRequest", "/api/jobs", {"prompt": "x", "strength": 0.5, "init_image": None}, "strength"),
    ("JobRequest", "/api/jobs", {"prompt": "x", "strength": 0.5}, "strength"),
    ("JobRequest", "/api/jobs", {"prompt": "x", "steps": 4}, "steps"),
    ("SwitchRequest", "/api/modes/switch", {"mode": ""}, "mode"),
    ("CustomJobRequest", "/api/custom", {"handler": ""}, "handler"),
]


@pytest.mark.parametrize(("name", "path", "body", "field"), REFUSED)
def test_what_the_api_refuses_the_document_refuses(app, name, path, body, field):
    """The drift the schema fuzzer found: each was accepted by the hand-written spec, refused by the API."""
    assert not schema(document(app), name).is_valid(body)
    response = app.test_client().post(path, json=body)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_an_empty_upload_is_refused_by_both(app):
    assert not schema(document(app), "SuperResUpload").is_valid({"file": ""})
    response = app.test_client().post("/api/superres", data={"file": (io.BytesIO(b""), "a.png")})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "file"


def test_switch_custom_and_superres_records_match_the_job_schema(app):
    doc = document(app)
    client = app.test_client()
    response = client.post("/api/modes/switch", json={"mode": "demo"})
    assert response.status_code == 202
    schema(doc, "Job").validate(response.get_json())
    upload = {"file": (io.BytesIO(base64.b64decode(png())), "a.png"), "out_format": "JPG", "magnitude": ""}
    response = client.post("/api/superres", data=upload)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["params"]["out_format"] == "jpeg"
    schema(doc, "Job").validate(response.get_json())
    with app.test_request_context():
        record = public_job(services().submit_custom("echo", {"a": [1, 2]}))
    assert record["params"] == {"handler": "echo", "args": {"a": [1, 2]}}
    schema(doc, "Job").validate(record)


def test_all_field_errors_come_at_once_each_with_its_field(app):
    body = {"prompt": 5, "seed": -1, "size": "7x7", "cfg_scale": 3, "sampler_name": "Euler a"}
    error = app.test_client().post("/api/jobs", json=body).get_json()["error"]
    fields = [e["field"] for e in error["errors"]]
    assert fields == ["prompt", "size", "seed", "cfg_scale", "sampler_name"]
    assert error["field"] == "prompt"
    by_field = {e["field"]: e["message"] for e in error["errors"]}
    assert "superres_quality" in by_field["cfg_scale"] and "guidance_scale" in by_field["cfg_scale"]
    assert "called sampler" in by_field["sampler_name"]
    schema(document(app), "ErrorBody").validate({"error": error})


def test_docs_page_and_its_assets_come_from_the_api(app):
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.text
    assert "//" not in re.sub(r"<!--.*?-->", "", html).replace("https://", "//"), "no external host"
    references = re.findall(r'(?:src|href|url:)\s*=?\s*"([^"]+)"', html)
    assert len(references) >= 4
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        assert client.get(reference).status_code == 200, reference
    assert "SwaggerUIBundle" in client.get("/docs/swagger-ui-bundle.js").text
    assert client.get("/docs/../config.py").status_code == 404


def request_schema(doc: dict, path: str) -> dict:
    """The schema of ``POST path``'s body (JSON or multipart), its reference resolved."""
    content = doc["paths"][path]["post"]["requestBody"]["content"]
    ref = next(iter(content.values()))["schema"]["$ref"]
    return doc["components"]["schemas"][ref.split("/")[-1]]


def test_every_job_route_documents_the_webhook_fields(app):
    doc = document(app)
    for path in ("/api/jobs", "/generate", "/api/superres", "/superres", "/api/modes/switch", "/api/custom"):
        body = request_schema(doc, path)
        assert {"webhook", "webhook_events_filter"} <= set(body["properties"]), path
        events = body["properties"]["webhook_events_filter"]["anyOf"][0]["items"]
        assert events["enum"] == ["start", "progress", "completed"], path
        needs = {"required": ["webhook"], "properties": {"webhook": {"not": {"type": "null"}}}}
        assert any(rule.get("then") == needs for rule in body["allOf"]), path
