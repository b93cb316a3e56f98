"""The API does not serve beyond loopback with AUTH unset (api/exposure.py, gunicorn.conf.py):
gunicorn exits before binding, naming the address and the two ways out."""

from __future__ import annotations

import pytest

from api import exposure
from tests.processes import free_port, wait_for


def without_auth(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "AUTH"}


@pytest.mark.parametrize(
    ("bind", "outside"),
    [
        ("127.0.0.1:4200", False),
        ("127.8.9.1:80", False),
        ("localhost:4200", False),
        ("[::1]:4200", False),
        ("unix:/run/dreamlab.sock", False),
        ("0.0.0.0:4200", True),
        ("[::]:4200", True),
        ("10.1.2.3:4200", True),
        ("api.example:4200", True),
    ],
)
def test_exposed_names_every_address_beyond_loopback(bind, outside):
    assert exposure.exposed([bind]) == ([bind] if outside else [])


def test_check_refuses_unset_auth_warns_explicit_off_and_accepts_keys():
    binds = ["127.0.0.1:1", "0.0.0.0:4200"]
    with pytest.raises(SystemExit, match=r"0\.0\.0\.0:4200.*AUTH=keys.*AUTH=off explicitly"):
        exposure.check(binds, {})
    assert "0.0.0.0:4200" in exposure.check(binds, {"AUTH": "off"})
    assert exposure.check(binds, {"AUTH": "keys"}) is None
    assert exposure.check(["127.0.0.1:4200"], {}) is None


def test_gunicorn_on_all_addresses_without_auth_exits_naming_the_fix(make_stack):
    stack = make_stack()
    stack.env = without_auth(stack.env)
    bind = f"0.0.0.0:{free_port()}"
    process = stack.spawn_api(bind)
    assert process.wait(timeout=60) != 0
    log = process.log_path.read_text()
    assert f"refusing to serve the API on {bind} without API keys" in log
    assert "Listening at" not in log


def test_gunicorn_on_all_addresses_with_auth_off_said_outright_serves_and_warns(make_stack):
    stack = make_stack()
    stack.env = without_auth(stack.env)
    base = stack.start_api({"AUTH": "off"}, host="0.0.0.0")
    log = stack.processes[-1].log_path
    wait_for(lambda: "anyone who reaches it" in log.read_text(), 30, "the AUTH=off warning in the API's log")
    assert base.startswith("http://127.0.0.1:")
