"""The OpenAPI document (JSON and YAML) and ``/docs``, Swagger UI 5 served from the files the
flask-swagger-ui package ships (only its files are used): the page loads nothing from another host."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
import yaml
from flask import Blueprint, Response, abort, current_app, jsonify, send_from_directory

from api.openapi import document, documented

bp = Blueprint("docs", __name__)
SWAGGER_UI = Path(flask_swagger_ui.__file__).with_name("dist")
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png")
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Dream Lab API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/api/openapi.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      validatorUrl: null
    });
  </script>
</body>
</html>
"""
_PAGES = {200: ("text/html",)}


@bp.get("/api/openapi.json")
@documented(tags=("status",), ok={200: (None, "This document, as JSON.")}, needs_key=False)
def openapi_json():
    """This OpenAPI document, generated from the request and response models."""
    return jsonify(document(current_app))


@bp.get("/api/openapi.yaml")
@documented(
    tags=("status",), ok={200: (None, "This document, as YAML.")}, media={200: ("application/yaml",)}, needs_key=False
)
def openapi_yaml():
    """This OpenAPI document, as YAML."""
    return Response(yaml.safe_dump(document(current_app), sort_keys=False), mimetype="application/yaml")


@bp.get("/docs")
@documented(tags=("status",), ok={200: (None, "Swagger UI.")}, media=_PAGES, needs_key=False)
def docs_page():
    """An interactive page for this API (Swagger UI, served from this API: no other host is asked)."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/<name>")
@documented(
    tags=("status",),
    ok={200: (None, "The file.")},
    errors={404: "No such asset."},
    media={200: ("text/css", "text/javascript", "image/png")},
    needs_key=False,
)
def docs_asset(name: str):
    """The page's scripts, stylesheet and icon, from the flask-swagger-ui package."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI, name, max_age=3600)
