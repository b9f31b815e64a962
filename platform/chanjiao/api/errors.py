"""Every answer under ``/api/v1`` that is not a success has one JSON shape::

    {"error": {"code": "not_found", "message": "...", "fields": {"title": "..."}}}

``fields`` appears on validation errors only. Messages follow the request's locale: Chinese,
or English when ``Accept-Language`` prefers it (the site's cookie plays no part here).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

from ..extensions import db

# HTTP status -> error code. The OpenAPI document lists the same codes.
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


class ApiError(Exception):
    """A refusal to send as the JSON error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES.get(status, "error")
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields is not None:
            body["fields"] = self.fields
        response = jsonify({"error": body})
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def api_locale() -> str:
    """The locale of API messages: Chinese unless ``Accept-Language`` prefers English."""
    return "en" if request.accept_languages.best_match(["zh_CN", "en"]) == "en" else "zh_CN"


def validation_error(fields: dict[str, str], message: str | None = None) -> ApiError:
    """A 422 naming each refused field."""
    return ApiError(422, message or _("提交的内容未通过校验。"), fields=fields)


def unauthorized(message: str, *, invalid_token: bool = False) -> ApiError:
    """A 401 with the challenge RFC 6750 asks for."""
    challenge = 'Bearer realm="chanjiao"'
    if invalid_token:
        challenge += ', error="invalid_token"'
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


def _http_messages() -> dict[int, str]:
    return {
        400: _("请求内容不完整或格式不正确。"),
        401: _("缺少有效的 API 令牌。"),
        403: _("您没有执行此操作的权限。"),
        404: _("请求的资源不存在。"),
        405: _("该地址不支持此请求方式。"),
        413: _("提交的内容超过了允许的大小。"),
        429: _("请求过于频繁，请稍后再试。"),
        500: _("服务暂时出现问题，请稍后再试。"),
    }


def http_error(error: HTTPException) -> ApiError:
    """The JSON form of a Werkzeug HTTP error (keeping headers such as ``Allow``)."""
    status = error.code or 500
    message = _http_messages().get(status) or _("请求无法处理。")
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    return ApiError(status, message, headers=headers, code=ERROR_CODES.get(status, "http_error"))


def _is_api_path(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def register(bp: Blueprint) -> None:
    """Answer every error of ``bp``, and routing errors under its prefix, as JSON."""

    @bp.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        return error.response()

    def handle_http_error(error: HTTPException):
        if isinstance(error, InternalServerError) or (error.code or 500) >= 500:
            # As the app's 500 page: a failure outside any unit of work may have left changes
            # in the session, which the answer must not carry on to commit.
            db.session.rollback()
        with force_locale(api_locale()):
            return http_error(error).response()

    # Handlers registered for a status code win over class-based ones, and the app registers
    # HTML pages by code: so the blueprint registers each code it may meet, then the base class.
    for status in (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500):
        bp.register_error_handler(status, handle_http_error)
    bp.register_error_handler(HTTPException, handle_http_error)

    prefix = bp.url_prefix or ""

    # An unknown path or method under the prefix matches no route of the blueprint, so its
    # error handlers would not apply and the app's HTML page would answer. Routing errors are
    # known before any view runs: answer them here.
    @bp.before_app_request
    def routing_errors_as_json() -> Response | None:
        error = request.routing_exception
        if error is None or not _is_api_path(request.path, prefix):
            return None
        if isinstance(error, HTTPException) and (error.code or 500) >= 400:
            with force_locale(api_locale()):
                return http_error(error).response()
        return None  # a redirect (e.g. a missing trailing slash) goes ahead as usual
