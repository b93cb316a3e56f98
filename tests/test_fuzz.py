"""Schema fuzzing: schemathesis generates requests for every operation of the API's own spec
(valid and invalid), sends them to the API under gunicorn on a real Redis, and checks each
answer: no 5xx (the synchronous routes' documented 504 aside) and everything as the spec says.

No worker runs, so generated jobs queue and the synchronous routes time out after
DEFAULT_TIMEOUT=1 s; what is fuzzed is the API's edge. The seed is fixed (derandomize), so a
failure reproduces: run this file alone and read the case's curl line.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.processes import own_stack

SPEC_PATH = "/api/openapi.yaml"
EXAMPLES_PER_OPERATION = 120
MIN_CASES = 1000
# The synchronous routes answer 504 with the job's location when it does not end in DEFAULT_TIMEOUT.
SYNCHRONOUS = {
    "/generate",
    "/superres",
    "/sdapi/v1/txt2img",
    "/sdapi/v1/img2img",
    "/sdapi/v1/extra-single-image",
    "/v1/images/generations",
    "/v1/images/edits",
}
# What a Python object's repr looks like inside an error message: an object's address, a list or dict of
# strings, a bytes value or a class.  JSON text never holds these unless a client sent them.
REPR = re.compile(r"object at 0x|\['|\{'|(?<!\w)b'|<class '")
# Not checked: that every schema-valid request is accepted. JSON Schema cannot say "a decodable PNG"
# or "a mode this fleet serves", so the API refuses some schema-valid requests with a 400 that names
# the field, as it should. The reverse is checked: a request the schema refuses is refused.


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory, modes_file):
    overrides = {"DEFAULT_TIMEOUT": "1", "SR_REQUEST_TIMEOUT": "1", "QUEUE_MAX": "100000", "MODES_WATCH": "0"}
    with own_stack(tmp_path_factory.mktemp("fuzz"), modes_file, **overrides) as stack:
        yield stack.start_api()


@pytest.fixture(scope="module")
def api_schema(fuzzed_api):
    return schemathesis.openapi.from_url(f"{fuzzed_api}{SPEC_PATH}")


def fuzz(operation) -> int:
    """Send the operation's generated cases and check each answer; the number of cases sent."""
    sent = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        nonlocal sent
        response = case.call(timeout=30)
        sent += 1
        timed_out = response.status_code == 504 and case.path in SYNCHRONOUS
        excluded = [checks.positive_data_acceptance, *([checks.not_a_server_error] if timed_out else [])]
        case.validate_response(response, excluded_checks=excluded)
        assert_no_repr(case, response)

    check()
    return sent


def assert_no_repr(case, response) -> None:
    """A refusal's text shows no Python repr, once what the client sent is taken out of it."""
    if response.status_code < 400:
        return
    try:
        text = "\n".join(strings(response.json()))
    except ValueError:
        text = response.text
    sent = strings([case.body, case.query, case.path_parameters, case.headers])
    sent += [unquote(value) for value in strings(case.path_parameters)]  # "%5B" reaches the API as "["
    for value in sorted(sent, key=len, reverse=True):
        text = text.replace(repr(value), "").replace(value, "")
    assert not REPR.search(text), f"{case.method} {case.path} answered {response.status_code}: {response.text[:500]}"


def strings(value: object) -> list[str]:
    """Every string inside a JSON-like value: keys and leaves."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (*strings(key), *strings(item))]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in strings(item)]
    return []


def test_every_answer_is_documented_and_none_is_a_server_error(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    sent = {f"{operation.method.upper()} {operation.path}": fuzz(operation) for operation in operations}
    assert all(sent.values()), sent
    assert sum(sent.values()) >= MIN_CASES, sent
