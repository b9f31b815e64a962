"""Object factories for tests (CTFd's ``gen_*`` style): each builds, adds and commits."""
from __future__ import annotations

import itertools
from typing import Any

import pyotp
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from chanjiao.extensions import db
from chanjiao.models import Demand, Organisation, Programme, Skill, TwoFactorCredential, User
from chanjiao.models._common import utcnow
from chanjiao.validators import credit_code_check_char

DEFAULT_PASSWORD = "Chanjiao-test-2026"
_counter = itertools.count(1)
# Hashing at test speed: the real KDF settings are exercised by the auth tests themselves.
_PASSWORD_HASH = generate_password_hash(DEFAULT_PASSWORD, method="pbkdf2:sha256:1000")


def credit_code(n: int | None = None) -> str:
    """A valid, unique unified social credit code."""
    n = next(_counter) if n is None else n
    first17 = f"91110105{n:09d}"
    return first17 + credit_code_check_char(first17)


def org(kind: str = "enterprise", status: str = "approved", **fields: Any) -> Organisation:
    n = next(_counter)
    values: dict[str, Any] = {
        "kind": kind,
        "name": f"测试{'企业' if kind == 'enterprise' else '培训学校'}{n}",
        "credit_code": credit_code(n),
        "district": "望京街道",
        "address": f"朝阳区望京街{n}号",
        "industry": "internet" if kind == "enterprise" else None,
        "category": "vocational_skill" if kind == "institution" else None,
        "contact_name": "张老师",
        "contact_phone": "13800138000",
        "status": status,
    }
    values.update(fields)
    organisation = Organisation(**values)
    db.session.add(organisation)
    db.session.commit()
    return organisation


def user(
    organisation: Organisation | None = None,
    role: str | None = None,
    two_factor: bool | None = None,
    **fields: Any,
) -> User:
    """A user; staff and admins come with a confirmed TOTP secret (``two_factor=False`` for
    one who has not enrolled yet), as the platform requires of them."""
    n = next(_counter)
    role = role or ("org_admin" if organisation is not None else "staff")
    values: dict[str, Any] = {
        "email": f"user{n}@example.cn",
        "name": f"用户{n}",
        "password_hash": _PASSWORD_HASH,
        "role": role,
        "organisation_id": organisation.id if organisation is not None else None,
        "email_confirmed_at": utcnow(),
    }
    values.update(fields)
    account = User(**values)
    db.session.add(account)
    db.session.flush()
    if two_factor if two_factor is not None else role in ("staff", "admin"):
        db.session.add(TwoFactorCredential(
            user_id=account.id, secret=pyotp.random_base32(), confirmed_at=utcnow()
        ))
    db.session.commit()
    return account


def totp_code(account: User) -> str:
    """The current authenticator code of ``account``'s confirmed secret."""
    credential = db.session.scalar(
        select(TwoFactorCredential).where(TwoFactorCredential.user_id == account.id)
    )
    assert credential is not None and credential.confirmed_at is not None, account
    return pyotp.TOTP(credential.secret).now()


def skill(name: str, synonyms: list[str] | None = None) -> Skill:
    tag = Skill(name=name, synonyms=synonyms or [])
    db.session.add(tag)
    db.session.commit()
    return tag


def demand(organisation: Organisation, status: str = "open", **fields: Any) -> Demand:
    values: dict[str, Any] = {
        "organisation_id": organisation.id,
        "title": "新能源汽车维修技师",
        "occupation": "汽车维修工",
        "description": "负责新能源汽车动力电池与电驱系统的检测维修。",
        "duties": ["动力电池故障诊断", "高压系统安全操作"],
        "requirements": ["持有低压电工作业证"],
        "skill_level": "L4",
        "headcount": 5,
        "district": "东坝地区",
        "mode": "offline",
        "status": status,
    }
    values.update(fields)
    posting = Demand(**values)
    db.session.add(posting)
    db.session.commit()
    return posting


def programme(organisation: Organisation, status: str = "published", **fields: Any) -> Programme:
    values: dict[str, Any] = {
        "organisation_id": organisation.id,
        "title": "新能源汽车高压系统检修培训",
        "description": "面向汽车维修从业人员的高压安全与动力电池检修课程。",
        "modules": [{"name": "高压安全与防护", "hours": 16}, {"name": "动力电池检测", "hours": 24}],
        "outcomes": ["能独立完成高压断电与验电", "能诊断动力电池常见故障"],
        "level": "L4",
        "certificate_kind": "skill_level",
        "certificate_name": "汽车维修工（四级）",
        "total_hours": 40,
        "mode": "offline",
        "district": "东坝地区",
        "capacity": 30,
        "fee": 3800,
        "subsidy_eligible": True,
        "status": status,
    }
    values.update(fields)
    posting = Programme(**values)
    db.session.add(posting)
    db.session.commit()
    return posting
