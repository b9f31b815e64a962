"""The OpenAPI document matches the routes the app serves, and is well formed for the subset of
JSON Schema the tests validate real responses with (tests/test_api.py checks every response it
gets against the documented schema of its status)."""
from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from chanjiao.api import schemas
from chanjiao.api.schemas import SCHEMAS, Problem
from chanjiao.common import forbidden_characters

from .test_api_helpers import DOCUMENT

METHODS = {"get", "post", "put", "patch", "delete"}
# Keywords the validator checks, and annotations it may ignore.
KNOWN_KEYWORDS = {
    "$ref", "type", "properties", "required", "additionalProperties", "items", "enum", "format",
    "minimum", "maximum", "minLength", "maxLength", "pattern", "maxItems", "description", "default",
}


def served_operations(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") or rule.rule == "/api/v1":
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            out |= {(path, m.lower()) for m in rule.methods if m.lower() in METHODS}
    return out


def documented_operations() -> set[tuple[str, str]]:
    return {(path, method) for path, item in DOCUMENT["paths"].items() for method in item if method in METHODS}


def test_every_served_route_is_documented_and_every_documented_one_is_served(app):
    served = served_operations(app)
    assert len(served) == 11
    assert served == documented_operations()


def test_an_independent_validator_finds_the_served_document_valid_openapi_3_1(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    # As a client reads it: the JSON text, not the Python objects that produced it.
    document = json.loads(served.get_data(as_text=True))
    validate(document, cls=OpenAPIV31SpecValidator)
    assert list(OpenAPIV31SpecValidator(document).iter_errors()) == []


def _broken(change) -> dict:
    document = json.loads(json.dumps(DOCUMENT))
    change(document)
    return document


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["components"]["parameters"]["k"].update({"in": "body"}),
        lambda d: d["paths"]["/demands"]["get"].update({"responses": []}),
        lambda d: d["paths"].update({"demands": d["paths"].pop("/demands")}),
    ],
    ids=["parameter-in-body", "responses-not-a-map", "path-without-slash"],
)
def test_the_independent_validator_is_not_a_rubber_stamp(change):
    assert list(OpenAPIV31SpecValidator(_broken(change)).iter_errors())


def test_the_documented_forbidden_characters_are_the_ones_stored_text_refuses():
    everything = "".join(map(chr, range(0x110000)))
    refused = {int(code[2:], 16) for code in forbidden_characters(everything)}
    documented = {c for low, high in schemas.FORBIDDEN_RANGES for c in range(low, high + 1)}
    assert refused == documented
    text, required = re.compile(schemas.TEXT_PATTERN), re.compile(schemas.REQUIRED_TEXT_PATTERN)
    assert all(not text.search(chr(c)) for c in documented)
    assert text.search("焊工\n\t\u200b") and not text.search("焊\u202e工")
    assert required.search(" 焊 ") and not required.search(" \t\n") and not required.search("")


def test_document_is_openapi_3_1_with_bearer_security(client):
    served = client.get("/api/v1/openapi.json").get_json()
    assert served == DOCUMENT
    assert DOCUMENT["openapi"] == "3.1.0"
    assert DOCUMENT["servers"] == [{"url": "/api/v1"}]
    assert DOCUMENT["components"]["securitySchemes"]["bearerToken"] == {
        **DOCUMENT["components"]["securitySchemes"]["bearerToken"], "type": "http", "scheme": "bearer"}
    assert DOCUMENT["security"] == [{"bearerToken": []}]
    assert DOCUMENT["paths"]["/openapi.json"]["get"]["security"] == []


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


def test_every_reference_resolves():
    for where, node in _walk(DOCUMENT):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = DOCUMENT
            for part in ref[2:].split("/"):
                assert part in target, f"{where}: {ref} does not resolve"
                target = target[part]


def test_schemas_use_only_keywords_the_validator_checks():
    for name, schema in SCHEMAS.items():
        for where, node in _walk(schema):
            if where.endswith("/properties"):
                continue  # property names, not keywords
            unknown = set(node) - KNOWN_KEYWORDS
            assert not unknown, f"{name}{where}: {unknown}"


def test_operations_document_parameters_bodies_and_errors():
    for path, item in DOCUMENT["paths"].items():
        path_params = {p["$ref"].rsplit("/", 1)[1] for p in item.get("parameters", [])}
        assert path_params == set(re.findall(r"{(\w+)}", path)), path
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation["responses"]
            assert operation["operationId"] and operation["summary"]
            if method in ("post", "patch"):
                assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert {"400", "413", "422"} <= set(responses)
            if path == "/openapi.json":
                continue
            assert {"401", "403", "405", "429", "500"} <= set(responses), (path, method)
            if "{" in path:
                assert {"404", "422"} <= set(responses)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    target = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                    assert target["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    rate_limited = DOCUMENT["components"]["responses"]["RateLimited"]["headers"]
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"} <= set(rate_limited)


def test_query_parameters_match_what_the_views_accept():
    parameters = DOCUMENT["components"]["parameters"]
    assert parameters["per_page"]["schema"]["maximum"] == 100
    assert (parameters["k"]["schema"]["minimum"], parameters["k"]["schema"]["maximum"]) == (1, 50)
    assert parameters["demand_id"]["schema"]["maximum"] == 2**31 - 1


# The validator itself, on the cases the documented schemas rely on.
@pytest.mark.parametrize(
    "instance, schema, expected",
    [
        (1, {"type": "integer"}, []),
        (True, {"type": "integer"}, [Problem("", "type", ["integer"])]),
        (1.0, {"type": "integer"}, [Problem("", "type", ["integer"])]),
        (None, {"type": ["integer", "null"]}, []),
        (float("nan"), {"type": "number"}, [Problem("", "type", ["number"])]),
        ("L9", {"type": "string", "enum": ["L4"]}, [Problem("", "enum", ["L4"])]),
        ("2026-02-30", {"type": "string", "format": "date"}, [Problem("", "format", "date")]),
        ("2026-02-28T10:00:00+00:00", {"type": "string", "format": "date-time"}, []),
        ("2026-02-28T10:00:00", {"type": "string", "format": "date-time"}, [Problem("", "format", "date-time")]),
        ("长" * 3, {"type": "string", "maxLength": 2}, [Problem("", "maxLength", 2)]),
        (0, {"type": "integer", "minimum": 1}, [Problem("", "minimum", {"minimum": 1})]),
        ("a\u202e", {"type": "string", "pattern": "^[^\u202e]*$"}, [Problem("", "pattern", "^[^\u202e]*$")]),
        ([1, "a"], {"type": "array", "items": {"type": "integer"}}, [Problem("[1]", "type", ["integer"])]),
        ({"a": 1}, {"type": "object", "properties": {}, "additionalProperties": False},
         [Problem("a", "additionalProperties")]),
        ({}, {"type": "object", "required": ["a"]}, [Problem("a", "required")]),
        ({"m": [{"h": "1"}]}, {"type": "object", "properties": {"m": {"type": "array", "items": {
            "type": "object", "properties": {"h": {"type": "integer"}}}}}}, [Problem("m[0].h", "type", ["integer"])]),
    ],
)
def test_validator(instance, schema, expected):
    assert schemas.validate(instance, schema) == expected
