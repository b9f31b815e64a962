"""The JSON API (``/api/v1``): the caller's own demands and programmes, and their matches.

Views parse the request, call one service and answer JSON; authentication, the rate limit and
the organisation kind are declared per route (:func:`.auth.token_required`); every error is
the JSON shape of :mod:`.errors`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from .. import matchmaking
from ..common import MAX_ID
from ..errors import DomainError, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..extensions import csrf
from ..postings import services as postings
from ..uow import run
from . import errors, schemas
from .auth import add_ratelimit_headers, token_required
from .errors import ApiError, validation_error
from .openapi import document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Callers authenticate with a bearer token, not the session cookie, so there is no cross-site
# request to forge; the token check replaces the CSRF check.
csrf.exempt(bp)
errors.register(bp)
bp.after_request(add_ratelimit_headers)

MAX_PER_PAGE = 100
MAX_K = 50
T = TypeVar("T")


# --------------------------------------------------------------------------- request parsing


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    # An empty value (``?k=``) is not an integer: refused as the document says, not defaulted.
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else None
    if value is None or not low <= value <= high:
        raise validation_error({name: _("请输入 %(low)s 到 %(high)s 之间的整数。", low=low, high=high)})
    return value


def _check_id(name: str, value: int) -> int:
    if value > MAX_ID:
        raise validation_error({name: _("编号超出范围。")})
    return value


def _json_number(literal: str) -> int | float:
    # JSON Schema counts 2.0 as an integer, and so do the document's validators: the API takes
    # such a number as the integer it is.
    value = float(literal)
    return int(value) if value.is_integer() else value


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise validation_error({}, _("请求体应为 JSON，并设置 Content-Type: application/json。"))
    raw = request.get_data(cache=True)  # 413 beyond MAX_CONTENT_LENGTH
    try:
        body = json.loads(raw, parse_float=_json_number)
    except (ValueError, RecursionError):
        raise validation_error({}, _("请求体不是有效的 JSON。")) from None
    if not isinstance(body, dict):
        raise validation_error({}, _("请求体应为 JSON 对象。"))
    return body


def _parse(convert: Callable[[], T]) -> T:
    try:
        return convert()
    except schemas.BodyInvalid as invalid:
        raise validation_error(invalid.fields) from None


def _run(change: Callable[[], T]) -> T:
    """Call a service that changes state in one unit of work; its result, or (nothing written)
    the JSON answer to its refusal."""
    try:
        return run(change)
    except NotFound as error:
        raise ApiError(404, error.message) from None
    except ValidationFailed as error:
        raise validation_error({error.field: error.message} if error.field else {}, error.message) from None
    except PermissionDenied as error:
        raise ApiError(403, error.message) from None
    except InvalidTransition as error:
        raise ApiError(409, error.message) from None
    except DomainError as error:
        raise validation_error({}, error.message) from None
    except IntegrityError:
        # Two callers created the same new skill tag at once (seen at the commit): the client
        # may simply retry.
        raise ApiError(409, _("保存时与其他人的修改冲突，请重新提交。")) from None


def _lookup(getter: Callable[..., T], posting_id: int) -> T:
    try:
        return getter(g.api_user, posting_id)
    except NotFound as error:
        raise ApiError(404, error.message) from None


def _page(items: list[Any], to_json: Callable[[Any], dict[str, Any]]):
    page = _int_arg("page", 1, 1, MAX_ID)
    per_page = _int_arg("per_page", 20, 1, MAX_PER_PAGE)
    start = (page - 1) * per_page
    return jsonify(
        {
            "items": [to_json(item) for item in items[start : start + per_page]],
            "page": page,
            "per_page": per_page,
            "total": len(items),
            "pages": max(1, -(-len(items) // per_page)),
        }
    )


# --------------------------------------------------------------------------- the document


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


# --------------------------------------------------------------------------- demands


@bp.get("/demands")
@token_required("enterprise")
def demand_list():
    return _page(postings.list_own_demands(g.api_user), schemas.demand_json)


@bp.post("/demands")
@token_required("enterprise")
def demand_create():
    data = _parse(lambda: schemas.demand_input(_json_body()))
    demand = _run(lambda: postings.create_demand(g.api_user, data))
    location = url_for(".demand_detail", demand_id=demand.id)
    return jsonify(schemas.demand_json(demand)), 201, {"Location": location}


@bp.get("/demands/<int:demand_id>")
@token_required("enterprise")
def demand_detail(demand_id: int):
    demand = _lookup(postings.get_own_demand, _check_id("demand_id", demand_id))
    return jsonify(schemas.demand_json(demand))


@bp.patch("/demands/<int:demand_id>")
@token_required("enterprise")
def demand_update(demand_id: int):
    demand = _lookup(postings.get_own_demand, _check_id("demand_id", demand_id))
    body = _json_body()
    data = _parse(lambda: schemas.demand_input(body, current=demand))
    demand = _run(lambda: postings.update_demand(g.api_user, demand_id, data))
    return jsonify(schemas.demand_json(demand))


@bp.get("/demands/<int:demand_id>/matches")
@token_required("enterprise")
def demand_matches(demand_id: int):
    demand = _lookup(postings.get_own_demand, _check_id("demand_id", demand_id))
    k = _int_arg("k", 10, 1, MAX_K)
    matches = matchmaking.recommend_programmes(demand, k=k)
    return jsonify(
        schemas.matches_json(
            "demand_id", demand.id, k, matches, "programme",
            matchmaking.level_thresholds(),
        )
    )


# --------------------------------------------------------------------------- programmes


@bp.get("/programmes")
@token_required("institution")
def programme_list():
    return _page(postings.list_own_programmes(g.api_user), schemas.programme_json)


@bp.post("/programmes")
@token_required("institution")
def programme_create():
    data = _parse(lambda: schemas.programme_input(_json_body()))
    programme = _run(lambda: postings.create_programme(g.api_user, data))
    location = url_for(".programme_detail", programme_id=programme.id)
    return jsonify(schemas.programme_json(programme)), 201, {"Location": location}


@bp.get("/programmes/<int:programme_id>")
@token_required("institution")
def programme_detail(programme_id: int):
    programme = _lookup(postings.get_own_programme, _check_id("programme_id", programme_id))
    return jsonify(schemas.programme_json(programme))


@bp.patch("/programmes/<int:programme_id>")
@token_required("institution")
def programme_update(programme_id: int):
    programme = _lookup(postings.get_own_programme, _check_id("programme_id", programme_id))
    body = _json_body()
    data = _parse(lambda: schemas.programme_input(body, current=programme))
    programme = _run(lambda: postings.update_programme(g.api_user, programme_id, data))
    return jsonify(schemas.programme_json(programme))


@bp.get("/programmes/<int:programme_id>/matches")
@token_required("institution")
def programme_matches(programme_id: int):
    programme = _lookup(postings.get_own_programme, _check_id("programme_id", programme_id))
    k = _int_arg("k", 10, 1, MAX_K)
    matches = matchmaking.recommend_demands(programme, k=k)
    return jsonify(
        schemas.matches_json(
            "programme_id", programme.id, k, matches, "demand",
            matchmaking.level_thresholds(),
        )
    )
