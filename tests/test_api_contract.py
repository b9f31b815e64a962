"""The API keeps the promises of its OpenAPI document, checked by an independent tool:
schemathesis generates requests from /api/v1/openapi.json, valid and invalid, sends them to the
real app on a real database, and checks each answer against the document.

Bounded and repeatable: a fixed number of examples per operation, derandomised, so a failure
reproduces on the next run.
"""
from __future__ import annotations

import pytest
import schemathesis
from flask import g
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from chanjiao.api.openapi import document
from chanjiao.common import MAX_ID, ZERO_WIDTH, has_visible_character

from .test_api_helpers import bearer, token_for

EXAMPLES_PER_OPERATION = 25

# What an invalid request may be answered with: every refusal the document lists for bad input.
# 409: an archived posting refuses any change, valid or not.
REFUSALS = ["400", "401", "403", "404", "405", "409", "413", "415", "422"]
# The rules the document states in prose, across fields, which a generated valid body may break.
CROSS_FIELD_RULES = {"total_hours", "certificate_name"}

# The document as the app serves it (tests/test_api_openapi.py checks they are the same).
SCHEMA = schemathesis.openapi.from_dict(
    document(),
    config=schemathesis.Config.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
            # The test sends a real token itself; tokens have tests of their own.
            "generation": {"with-security-parameters": False},
        }
    ),
)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance,
          negative_data_rejection]


def _cases():
    for operation in OPERATIONS:
        yield pytest.param(operation, GenerationMode.POSITIVE, id=f"{operation.label} valid")
        # The document itself takes no input, so there is nothing invalid to send it.
        if operation.path != "/openapi.json":
            yield pytest.param(operation, GenerationMode.NEGATIVE, id=f"{operation.label} invalid")


@pytest.fixture
def world(app, make):
    """An enterprise and an institution with a token each and postings in every status, and
    other organisations' postings to be matched with."""
    # Hundreds of requests a minute from one token: the limit has tests of its own.
    app.config["API_RATELIMIT_PER_MINUTE"] = 0
    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr, trainer = make.user(enterprise), make.user(institution)
    demands = [make.demand(enterprise, status=s, title=f"养老护理员{s}") for s in ("draft", "open", "closed")]
    programmes = [make.programme(institution, status=s) for s in ("draft", "published", "archived")]
    make.demand(make.org("enterprise"), status="open", title="他人的需求")
    make.programme(make.org("institution"), status="published", title="他人的项目")
    return {
        "demands": [d.id for d in demands],
        "programmes": [p.id for p in programmes],
        "demand_token": token_for(hr),
        "programme_token": token_for(trainer),
    }


def _aim_at_own_postings(case, world) -> None:
    """Most generated ids name nothing; send half of the cases with a valid id to the caller's
    own postings so that reads and changes really happen (which ones is fixed by the id)."""
    for name, kind in (("demand_id", "demands"), ("programme_id", "programmes")):
        value = (case.path_parameters or {}).get(name)
        if type(value) is int and 1 <= value <= MAX_ID and value % 2:
            case.path_parameters[name] = world[kind][value % len(world[kind])]


def _prose_rule(field: str, body) -> bool:
    """Whether refusing ``field`` of a body its schema allows follows a rule the document states
    in words only: one across fields, or "at least one visible character" (a pattern cannot
    list the letters, digits, punctuation and symbols of Unicode)."""
    if field in CROSS_FIELD_RULES:
        return True
    value = body.get(field) if isinstance(body, dict) else None
    if field == "modules" and isinstance(value, list):
        return any(not has_visible_character(m["name"].translate(ZERO_WIDTH)) for m in value)
    return isinstance(value, str) and not has_visible_character(value.translate(ZERO_WIDTH))


@pytest.mark.parametrize("operation, mode", list(_cases()))
def test_api_keeps_its_documented_contract(operation, mode, app, world):
    token = world["programme_token"] if operation.path.startswith("/programmes") else world["demand_token"]
    sent = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        _aim_at_own_postings(case, world)
        # One app context spans the test; a real request starts with an empty ``g``.
        for name in list(g):
            g.pop(name)
        response = case.call_and_validate(app=app, headers=bearer(token), checks=CHECKS)
        sent.append(response.status_code)
        if mode is GenerationMode.POSITIVE and response.status_code == 422:
            refused = set(response.json()["error"].get("fields", {}))
            assert refused and all(_prose_rule(field, case.body) for field in refused), (
                f"{case.method} {case.path}: a request the document allows was refused: "
                f"{response.json()}\n{case.path_parameters!r} {case.query!r} {case.body!r}")

    check()
    assert sent, "no request was sent"
