"""The OpenAPI 3.1 document of ``/api/v1``, built from :mod:`.schemas` (the same schemas the
API checks request bodies against)."""
from __future__ import annotations

import copy
from typing import Any

from ..common import MAX_ID
from . import schemas

API_VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema_name: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _error_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


_RATE_HEADERS = {
    "X-RateLimit-Limit": {"$ref": "#/components/headers/X-RateLimit-Limit"},
    "X-RateLimit-Remaining": {"$ref": "#/components/headers/X-RateLimit-Remaining"},
}

_ERRORS = {
    "BadRequest": "Body is not valid JSON, or not an object.",
    "Unauthorized": "Missing, malformed, unknown or revoked token. No lookup was made.",
    "Forbidden": "Inactive account, suspended organisation, or wrong organisation kind for this endpoint.",
    "NotFound": "No such object among the caller's organisation's postings.",
    "MethodNotAllowed": "Method not supported for this path.",
    "Conflict": "The posting's status does not allow the change (e.g. archived), or a concurrent edit.",
    "PayloadTooLarge": "Body larger than the server accepts.",
    "ValidationError": "Bad input; `fields` names each refused field (JSON path) with a message. Nothing was written.",
    "RateLimited": "Too many requests for this token in the current minute.",
    "InternalError": "Unexpected server error.",
    "Unavailable": (
        "The database cannot be reached (`service_unavailable`) or is read-only for maintenance "
        "(`read_only`). Nothing was written; retry after `Retry-After` seconds."
    ),
}


def _components() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for name, description in _ERRORS.items():
        responses[name] = _json("Error", description)
    responses["Unauthorized"]["headers"] = {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge (RFC 6750)."}
    }
    responses["MethodNotAllowed"]["headers"] = {
        "Allow": {"schema": {"type": "string"}, "description": "The methods the path supports."}
    }
    responses["RateLimited"]["headers"] = {
        **_RATE_HEADERS,
        "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds until the window resets."},
    }
    responses["Unavailable"]["headers"] = {
        "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait before retrying."},
    }
    return {
        "schemas": copy.deepcopy(schemas.SCHEMAS),
        "responses": responses,
        "parameters": {
            "page": {
                "name": "page", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID, "default": 1},
                "description": "Page number; a page past the end is empty.",
            },
            "per_page": {
                "name": "per_page", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            "k": {
                "name": "k", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                "description": (
                    "How many candidates to return, best first (an integer from 1 to 50; anything "
                    "else is a 422 naming the range). Candidates below `min_probability` are "
                    "included with `level` null."
                ),
            },
            "demand_id": {
                "name": "demand_id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            },
            "programme_id": {
                "name": "programme_id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            },
        },
        "headers": {
            "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed per minute per token."},
            "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in this minute."},
        },
        "securitySchemes": {
            "bearerToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "A personal API token (cj_…), created at /account/tokens/.",
            }
        },
    }


def _common_errors(*extra: tuple[str, str]) -> dict[str, Any]:
    responses = {
        "401": _error_ref("Unauthorized"),
        "403": _error_ref("Forbidden"),
        "405": _error_ref("MethodNotAllowed"),
        "429": _error_ref("RateLimited"),
        "500": _error_ref("InternalError"),
        "503": _error_ref("Unavailable"),
    }
    responses.update({status: _error_ref(name) for status, name in extra})
    return dict(sorted(responses.items()))


def _param(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _collection(kind: str, model: str, tag: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": f"list{model}s",
            "tags": [tag],
            "summary": f"List the caller's organisation's {kind}s, newest first (archived last).",
            "parameters": [_param("page"), _param("per_page")],
            "responses": {
                "200": _json(f"{model}Page", "One page of postings.", _RATE_HEADERS),
                **_common_errors(("422", "ValidationError")),
            },
        },
        "post": {
            "operationId": f"create{model}",
            "tags": [tag],
            "summary": f"Create a draft {kind}.",
            "requestBody": _body(f"{model}Create"),
            "responses": {
                "201": {
                    **_json(model, "Created.", _RATE_HEADERS),
                    "headers": {
                        **_RATE_HEADERS,
                        "Location": {"schema": {"type": "string"}, "description": "URL of the new posting."},
                    },
                },
                **_common_errors(
                    ("400", "BadRequest"), ("409", "Conflict"), ("413", "PayloadTooLarge"), ("422", "ValidationError")
                ),
            },
        },
    }


def _item(kind: str, model: str, tag: str, id_name: str) -> dict[str, Any]:
    return {
        "parameters": [_param(id_name)],
        "get": {
            "operationId": f"get{model}",
            "tags": [tag],
            "summary": f"One of the caller's organisation's {kind}s.",
            "responses": {
                "200": _json(model, "The posting.", _RATE_HEADERS),
                **_common_errors(("404", "NotFound"), ("422", "ValidationError")),
            },
        },
        "patch": {
            "operationId": f"update{model}",
            "tags": [tag],
            "summary": f"Change some fields of one of the caller's organisation's {kind}s.",
            "requestBody": _body(f"{model}Update"),
            "responses": {
                "200": _json(model, "The changed posting.", _RATE_HEADERS),
                **_common_errors(
                    ("400", "BadRequest"), ("404", "NotFound"), ("409", "Conflict"),
                    ("413", "PayloadTooLarge"), ("422", "ValidationError"),
                ),
            },
        },
    }


def _matches(kind: str, model: str, tag: str, id_name: str, other: str) -> dict[str, Any]:
    return {
        "parameters": [_param(id_name)],
        "get": {
            "operationId": f"match{model}",
            "tags": [tag],
            "summary": f"The best public {other}s for one of the caller's {kind}s, ranked and explained.",
            "description": (
                "The top `k` candidates, ordered by `probability` (then `score`). Each carries the "
                "calibrated `probability` that the pair is relevant (the same number from both "
                "sides of a pair, comparable across lists) and its `level` (`high`, `good`, "
                "`partial`; lower bounds in `level_thresholds`). Candidates below "
                "`min_probability` are returned too, with `level` null: they are not matches, "
                "only the nearest candidates, so an empty set of matches can be shown honestly. "
                "`score` is the raw ranker score, comparable only within one list."
            ),
            "parameters": [_param("k")],
            "responses": {
                "200": _json(f"{'Programme' if model == 'Demand' else 'Demand'}Matches", "Ranked matches.", _RATE_HEADERS),
                **_common_errors(("404", "NotFound"), ("422", "ValidationError")),
            },
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (paths relative to the server URL ``/api/v1``)."""
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Chanjiao API (产教融合对接平台接口)",
            "version": API_VERSION,
            "description": (
                "The caller's own demands (enterprises) or programmes (training institutions), "
                "and their ranked, explained matches. Authenticate with `Authorization: Bearer "
                "<token>`. Every error has the shape `{\"error\": {\"code\", \"message\"}}` "
                "(plus `fields` on validation errors). Messages are Chinese unless "
                "`Accept-Language` prefers English."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerToken": []}],
        "tags": [{"name": "demands"}, {"name": "programmes"}, {"name": "meta"}],
        "paths": {
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "tags": ["meta"],
                    "summary": "This document.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/demands": _collection("demand", "Demand", "demands"),
            "/demands/{demand_id}": _item("demand", "Demand", "demands", "demand_id"),
            "/demands/{demand_id}/matches": _matches("demand", "Demand", "demands", "demand_id", "programme"),
            "/programmes": _collection("programme", "Programme", "programmes"),
            "/programmes/{programme_id}": _item("programme", "Programme", "programmes", "programme_id"),
            "/programmes/{programme_id}/matches": _matches(
                "programme", "Programme", "programmes", "programme_id", "open demand"
            ),
        },
        "components": _components(),
    }
