"""Helpers shared by the API tests (no tests here): tokens, headers, and checking bodies against
the OpenAPI document the API serves."""
from __future__ import annotations

import re

from chanjiao.api.openapi import document
from chanjiao.api.schemas import validate
from chanjiao.extensions import db
from chanjiao.tokens import services as tokens

DOCUMENT = document()


def token_for(user, name: str = "测试令牌") -> str:
    """Create and commit a token for ``user``; return its secret."""
    _token, secret = tokens.create_token(user, name)
    db.session.commit()
    return secret


def bearer(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


def template_of(url: str) -> str:
    """The document's path template for a concrete /api/v1 URL (query dropped)."""
    path = url.split("?", 1)[0].removeprefix("/api/v1")
    for template in DOCUMENT["paths"]:
        pattern = "^" + re.sub(r"\\{[^}]+\\}", r"[0-9]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"{url} is not in the OpenAPI document")


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def assert_documented(response, method: str, url: str) -> None:
    """The response's status is documented for this operation and its body and headers match
    the documented schema (every keyword, not just structure)."""
    operation = DOCUMENT["paths"][template_of(url)][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {url}: {status} not documented"
    documented = _resolve(operation["responses"][status])
    schema = documented["content"]["application/json"]["schema"]
    assert response.is_json, response.get_data(as_text=True)[:500]
    problems = validate(response.get_json(), schema, DOCUMENT)
    assert problems == [], (method, url, status, problems[:5])
    for header in documented.get("headers", {}):
        assert header in response.headers, f"{method} {url}: header {header} missing"


def assert_error(response, status: int, code: str) -> dict:
    """A JSON error of the documented shape; returns its ``error`` object."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:1000])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert validate(body, {"$ref": "#/components/schemas/Error"}, DOCUMENT) == []
    return body["error"]
