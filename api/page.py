"""The web page at ``/``: plain HTML, CSS and JavaScript from api/static, no build step, nothing from a CDN.

It calls the same HTTP API as any client (api/static/app.js); under AUTH=keys the page itself
is open and asks for a key, which it sends with every request it makes.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from api.openapi import documented

bp = Blueprint("page", __name__)


@bp.get("/")
@documented(tags=("status",), ok={200: (None, "The web page (HTML).")}, media={200: ("text/html",)}, needs_key=False)
def index():
    """The web page: a form, live progress, a gallery of recent jobs and the fleet."""
    response = current_app.send_static_file("index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response
