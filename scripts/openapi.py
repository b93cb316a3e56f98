"""Print the API's OpenAPI document as YAML: ``python -m scripts.openapi`` (no Redis needed)."""

from __future__ import annotations

import sys

import yaml
from flask import Flask

from api import blueprints
from api.openapi import document


def main() -> int:
    app = Flask("api")
    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    sys.stdout.write(yaml.safe_dump(document(app), sort_keys=False, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
