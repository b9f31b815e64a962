"""Per-user API tokens: create, list, revoke, and resolve a presented secret.

Only the SHA-256 of a secret is stored, with a short prefix that tells tokens apart in the
dashboard; the secret itself is shown once, when the token is created.
"""
from __future__ import annotations

import hashlib
import secrets

from flask_babel import gettext as _
from sqlalchemy import select

from ..common import get_by_id, has_visible_character, visible_text
from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import ApiToken, User
from ..models._common import utcnow
from ..models.audit import record

SECRET_PREFIX = "cj_"
PREFIX_LENGTH = len(SECRET_PREFIX) + 8  # "cj_" and 8 characters of the secret
MAX_NAME = 60
# token_urlsafe(32) gives 43 characters; anything much longer is not one of ours.
MAX_SECRET_LENGTH = 100


def hash_secret(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def list_tokens(actor: User) -> list[ApiToken]:
    """The actor's tokens, live ones first, newest first."""
    stmt = (
        select(ApiToken)
        .where(ApiToken.user_id == actor.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(db.session.scalars(stmt))


def create_token(actor: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for the actor; returns it with its secret (not stored, shown once)."""
    name = visible_text(name, _("令牌名称"), "name")
    if not has_visible_character(name):
        raise ValidationFailed(_("此项为必填项。"), field="name")
    if len(name) > MAX_NAME:
        raise ValidationFailed(_("最多 %(n)s 个字。", n=MAX_NAME), field="name")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=actor.id,
        name=name,
        token_hash=hash_secret(secret),
        prefix=secret[:PREFIX_LENGTH],
    )
    db.session.add(token)
    db.session.flush()
    record(actor, "api_token.create", token, name=name, prefix=token.prefix)
    return token, secret


def revoke_token(actor: User, token_id: int) -> ApiToken:
    """Revoke one of the actor's tokens (idempotent); another user's is :class:`NotFound`."""
    token = get_by_id(ApiToken, token_id)
    if token is None or token.user_id != actor.id:
        raise NotFound(_("令牌不存在。"))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.flush()
        record(actor, "api_token.revoke", token, prefix=token.prefix)
    return token


def token_for_secret(secret: str) -> ApiToken | None:
    """The live (not revoked) token whose secret this is, or None."""
    if (
        not secret
        or len(secret) > MAX_SECRET_LENGTH
        or not secret.startswith(SECRET_PREFIX)
        or not secret.isascii()
    ):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(secret)))
    if token is None or token.revoked_at is not None:
        return None
    return token


def touch(token: ApiToken) -> None:
    """Record that the token was just used (the caller commits)."""
    token.last_used_at = utcnow()
