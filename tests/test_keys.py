"""API keys under AUTH=keys, against the API under gunicorn on a real Redis: 401 without a key,
a revoked key refused at once, a user key kept to its own jobs and off the operators' endpoints."""

from __future__ import annotations

import subprocess
import sys
import uuid

import requests
from flask import Flask

from api import blueprints
from api.keystore import digest
from api.openapi import document
from tests.processes import ROOT
from tests.sr_helpers import encoded, picture


def key_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "api.keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def create_key(env: dict[str, str], role: str, name: str) -> str:
    """A new key from the CLI: the last line it prints."""
    done = key_cli(env, "create", "--role", role, "--name", name)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def spec_operations() -> list[tuple[str, str, bool]]:
    """Every (method, path, needs a key) the OpenAPI document lists, a made-up job ID in the job paths."""
    app = Flask("spec")
    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    values = {"{job_id}": str(uuid.uuid4()), "{name}": "swagger-ui.css", "{index}": "1"}

    def filled(path: str) -> str:
        for name, value in values.items():
            path = path.replace(name, value)
        return path

    return [
        (method, filled(path), "401" in operation["responses"])
        for path, item in document(app)["paths"].items()
        for method, operation in item.items()
    ]


def test_without_a_valid_key_every_endpoint_but_healthz_is_401(make_stack):
    stack = make_stack(AUTH="keys")
    base = stack.start_api()
    operations = spec_operations()
    assert len(operations) >= 15
    open_paths = {path for _, path, needs_key in operations if not needs_key}
    assert open_paths == {"/healthz", "/", "/api/openapi.json", "/api/openapi.yaml", "/docs", "/docs/swagger-ui.css"}
    for method, path, needs_key in operations:
        for headers in ({}, bearer("dl_not-a-key")):
            response = requests.request(method, f"{base}{path}", headers=headers, json={}, timeout=30)
            if not needs_key:
                assert response.status_code == 200, (method, path)
                continue
            assert response.status_code == 401, (method, path, response.text)
            assert "python -m api.keys create" in response.json()["error"]["message"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bearer_and_basic_auth_and_a_revoked_key_fails_at_once(make_stack):
    stack = make_stack(AUTH="keys")
    base = stack.start_api()
    key = create_key(stack.env, "user", "alice")
    assert requests.get(f"{base}/api/modes", headers=bearer(key), timeout=30).status_code == 200
    # webuiapi and other A1111-style clients send HTTP basic auth: the key is the password.
    assert requests.get(f"{base}/api/modes", auth=("anyone", key), timeout=30).status_code == 200
    assert requests.get(f"{base}/api/modes", auth=("alice", "wrong"), timeout=30).status_code == 401
    assert create_key(stack.env, "user", "bob") != key
    assert key_cli(stack.env, "create", "--role", "user", "--name", "alice").returncode != 0  # name taken

    revoked = key_cli(stack.env, "revoke", "alice")
    assert revoked.returncode == 0, revoked.stderr
    response = requests.get(f"{base}/api/modes", headers=bearer(key), timeout=30)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert key_cli(stack.env, "revoke", "alice").returncode != 0


def test_keys_are_stored_hashed(make_stack, redis_server):
    stack = make_stack()
    key = create_key(stack.env, "admin", "ops")
    client = redis_server.client()
    stored = b"".join(
        k + b"".join(client.hgetall(k).values()) if client.type(k) == b"hash" else k + client.get(k)
        for k in client.scan_iter("dl:apikey*")
    )
    assert key.encode() not in stored
    assert digest(key).encode() in stored


def test_a_user_key_sees_only_its_own_jobs_and_no_operator_endpoint(make_stack):
    stack = make_stack(AUTH="keys")
    base = stack.start_api()  # no worker: the npu mode's jobs stay queued
    alice, bob, admin = (
        create_key(stack.env, role, name) for role, name in (("user", "alice"), ("user", "bob"), ("admin", "ops"))
    )
    submitted = requests.post(
        f"{base}/api/jobs", json={"mode": "npu", "prompt": "mine"}, headers=bearer(alice), timeout=30
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]

    for method, path in (("get", ""), ("get", "/result"), ("post", "/cancel"), ("delete", "")):
        response = requests.request(method, f"{base}/api/jobs/{job}{path}", headers=bearer(bob), timeout=30)
        assert response.status_code == 404, (method, path, response.text)
    assert requests.get(f"{base}/api/jobs/{job}", headers=bearer(alice), timeout=30).json()["status"] == "queued"
    assert requests.get(f"{base}/api/jobs/{job}", headers=bearer(admin), timeout=30).status_code == 200
    assert requests.get(f"{base}/api/jobs/{job}/result", headers=bearer(alice), timeout=30).status_code == 409

    operator = (
        ("post", "/api/modes/reload", None),
        ("post", "/api/modes/switch", {"mode": "npu"}),
        ("post", "/api/custom", {"handler": "echo", "args": {}}),
        ("get", "/api/vram", None),
        ("get", "/api/models/status", None),
    )
    for method, path, body in operator:
        response = requests.request(method, f"{base}{path}", json=body, headers=bearer(bob), timeout=30)
        assert response.status_code == 403, (path, response.text)
        assert "admin key" in response.json()["error"]["message"]
    admin_codes = [
        requests.request(method, f"{base}{path}", json=body, headers=bearer(admin), timeout=30).status_code
        for method, path, body in operator
    ]
    assert admin_codes == [200, 202, 400, 200, 200]  # 400: no live worker offers 'echo'

    as_user = requests.get(f"{base}/api/modes", headers=bearer(bob), timeout=30).json()
    as_admin = requests.get(f"{base}/api/modes", headers=bearer(admin), timeout=30).json()
    assert str(ROOT) in str(as_admin) and as_admin["config"]["source"]
    assert as_user["config"]["source"] is None
    assert str(ROOT) not in str(as_user) and "/" not in str(as_user["modes"])
    assert [m["name"] for m in as_user["modes"]] == [m["name"] for m in as_admin["modes"]]
    styled = next(m for m in as_user["modes"] if m["name"] == "styled")
    assert [lora["strength"] for lora in styled["loras"]] == [1.0, 0.5]

    cancel = requests.post(f"{base}/api/jobs/{job}/cancel", headers=bearer(alice), timeout=30)
    assert cancel.status_code == 200, cancel.text


def test_a_super_resolution_job_belongs_to_its_key(make_stack):
    stack = make_stack(AUTH="keys")
    base = stack.start_api()  # no SR worker: the job stays queued
    alice, bob = create_key(stack.env, "user", "alice"), create_key(stack.env, "user", "bob")
    upload = {"file": ("in.png", encoded(picture(32, 32)))}
    submitted = requests.post(f"{base}/api/superres", files=upload, headers=bearer(alice), timeout=30)
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    assert requests.get(f"{base}/api/jobs/{job}", headers=bearer(bob), timeout=30).status_code == 404
    assert requests.get(f"{base}/api/jobs/{job}", headers=bearer(alice), timeout=30).status_code == 200
