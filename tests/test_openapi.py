"""api/openapi.yaml is a valid spec and documents exactly the routes the app serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from openapi_spec_validator import validate

SPEC = Path(__file__).resolve().parent.parent / "api" / "openapi.yaml"


def test_spec_is_valid():
    validate(yaml.safe_load(SPEC.read_text()))


def test_every_route_is_documented(redis_server, modes_file, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("MODES_FILE", str(modes_file))
    monkeypatch.setenv("MODES_WATCH", "0")
    from api import create_app

    app = create_app()
    served = {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    spec = yaml.safe_load(SPEC.read_text())
    documented = {(method, path) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert served == documented
