"""Load the demo dataset into the current session through the ORM and the skill service.

The caller commits (``flask seed-demo`` does, once, so a failure leaves nothing behind).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..auth.services import hash_password
from ..extensions import db
from ..models import Demand, Organisation, Programme, User
from ..models._common import utcnow
from ..models.audit import record
from ..search import reindex_all
from ..skill_vocabulary import VOCABULARY
from ..skills import resolve_skills, seed_vocabulary
from ..validators import credit_code_check_char
from .data_demands import DEMANDS
from .data_orgs import ENTERPRISES, FOUNDING_DATE, INSTITUTIONS
from .data_programmes import PROGRAMMES

DEMO_PASSWORD = "Chanjiao-demo-2026"
STAFF_EMAIL = "staff@chanjiao.demo"
ADMIN_EMAIL = "admin@chanjiao.demo"

# Fictional registration numbers under Chaoyang's administrative code 110105: "91" is a
# company registered with market regulation, "52" a private non-enterprise unit (民办学校).
ENTERPRISE_CODE_PREFIX = "91110105MA0"
INSTITUTION_CODE_PREFIX = "52110105MJ0"

APPROVAL_REASON = "营业执照、办学许可等材料齐全，信息核验一致，同意入驻平台。"


def demo_credit_code(prefix: str, n: int) -> str:
    """A valid fictional credit code: an 11-character prefix, a 6-digit sequence, the check."""
    first17 = f"{prefix}{(37 * n + 1024) % 1_000_000:06d}"
    return first17 + credit_code_check_char(first17)


def org_email(n: int) -> str:
    """Login of the n-th demo organisation's admin (1-based)."""
    return f"org{n:02d}@chanjiao.demo"


@dataclass
class DemoSummary:
    """What :func:`load_demo_data` created, for the command's report and for tests."""

    skills: int = 0
    organisations: Counter = field(default_factory=Counter)  # (kind, status) -> n
    users: int = 0
    demands: Counter = field(default_factory=Counter)  # status -> n
    programmes: Counter = field(default_factory=Counter)  # status -> n
    indexed: int = 0


def load_demo_data() -> DemoSummary:
    """Seed vocabulary, organisations, accounts, postings and the search index; no commit."""
    summary = DemoSummary()
    seed_vocabulary(VOCABULARY)
    summary.skills = len(VOCABULARY)

    # Timestamps are spread over the past weeks so that lists and audit history look lived-in.
    base = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=75)
    password_hash = hash_password(DEMO_PASSWORD)  # one KDF run, shared by every demo account

    staff = User(email=STAFF_EMAIL, name="协会工作人员（演示）", password_hash=password_hash,
                 role="staff", created_at=base, email_confirmed_at=base)
    admin = User(email=ADMIN_EMAIL, name="系统管理员（演示）", password_hash=password_hash,
                 role="admin", created_at=base, email_confirmed_at=base)
    db.session.add_all([staff, admin])
    db.session.flush()
    summary.users += 2

    orgs: dict[str, Organisation] = {}
    admins: dict[str, User] = {}
    entries = [("enterprise", e) for e in ENTERPRISES] + [("institution", i) for i in INSTITUTIONS]
    codes = Counter()
    for n, (kind, data) in enumerate(entries, start=1):
        codes[kind] += 1
        prefix = ENTERPRISE_CODE_PREFIX if kind == "enterprise" else INSTITUTION_CODE_PREFIX
        registered = base + timedelta(days=n, hours=n % 7)
        founding = bool(data.get("founding"))
        member_since = FOUNDING_DATE if founding else data.get("member_since")
        org = Organisation(
            kind=kind,
            name=data["name"],
            credit_code=demo_credit_code(prefix, codes[kind]),
            district=data["district"],
            address=data["address"],
            industry=data.get("industry"),
            category=data.get("category"),
            description=data["description"],
            contact_name=data["contact_name"],
            contact_phone=data["contact_phone"],
            status="pending",
            member_since=date.fromisoformat(member_since) if member_since else None,
            founding_member=founding,
            created_at=registered,
        )
        db.session.add(org)
        db.session.flush()
        _decide(org, data.get("status", "approved"), data.get("reason", ""), staff, registered)
        summary.organisations[(kind, org.status)] += 1

        account = User(email=org_email(n), name=data["contact_name"], password_hash=password_hash,
                       role="org_admin", organisation_id=org.id, created_at=registered,
                       email_confirmed_at=registered)
        db.session.add(account)
        orgs[data["key"]], admins[data["key"]] = org, account
        summary.users += 1
    db.session.flush()

    for n, data in enumerate(DEMANDS):
        org = orgs[data["org"]]
        demand = Demand(
            organisation_id=org.id,
            title=data["title"],
            occupation=data["occupation"],
            description=data["description"],
            duties=list(data["duties"]),
            requirements=list(data["requirements"]),
            skill_level=data["level"],
            headcount=data["headcount"],
            district=data.get("district", org.district),
            location=data.get("location", org.address),
            mode=data.get("mode", "offline"),
            desired_start=date.fromisoformat(data["start"]),
            budget_per_person=data["budget"],
            status=data.get("status", "open"),
            created_by_id=admins[data["org"]].id,
            skills=resolve_skills(data["skills"], create=False),
        )
        _stamp(demand, org, n, published=demand.status in ("open", "closed"))
        db.session.add(demand)
        summary.demands[demand.status] += 1

    for n, data in enumerate(PROGRAMMES):
        org = orgs[data["org"]]
        programme = Programme(
            organisation_id=org.id,
            **programme_fields(data, org),
            status=data.get("status", "published"),
            created_by_id=admins[data["org"]].id,
            skills=resolve_skills(data["skills"], create=False),
        )
        _stamp(programme, org, n, published=programme.status == "published")
        db.session.add(programme)
        summary.programmes[programme.status] += 1

    db.session.flush()
    summary.indexed = reindex_all()
    return summary


def programme_fields(data: dict, org: Organisation) -> dict:
    """A demo programme's posting fields (those a programme form has, skills apart), with the
    demo defaults: offline, at the institution's street and address."""
    kind, certificate = data["cert"]
    return dict(
        title=data["title"],
        description=data["description"],
        modules=[{"name": name, "hours": hours} for name, hours in data["modules"]],
        outcomes=list(data["outcomes"]),
        level=data["level"],
        certificate_kind=kind,
        certificate_name=certificate,
        total_hours=data["hours"],
        mode=data.get("mode", "offline"),
        district=data.get("district", org.district),
        location=data.get("location", org.address),
        capacity=data["capacity"],
        fee=data["fee"],
        subsidy_eligible=data["subsidy"],
        schedule=data["schedule"],
    )


def _decide(org: Organisation, status: str, reason: str, staff: User, registered: datetime) -> None:
    """Replay the approval history: approved (and later suspended) by staff, or still pending."""
    if status == "pending":
        return
    approved_at = registered + timedelta(days=2, hours=3)
    org.status, org.status_reason, org.status_decided_at = "approved", "", approved_at
    record(staff, "organisation.approve", org, APPROVAL_REASON).created_at = approved_at
    if status == "suspended":
        suspended_at = approved_at + timedelta(days=30)
        org.status, org.status_reason, org.status_decided_at = "suspended", reason, suspended_at
        record(staff, "organisation.suspend", org, reason).created_at = suspended_at
    elif status != "approved":
        raise ValueError(f"demo organisation {org.name} has unsupported status {status!r}")


def _stamp(posting: Demand | Programme, org: Organisation, n: int, published: bool) -> None:
    decided = org.status_decided_at or org.created_at
    created = decided + timedelta(days=1 + n % 20, hours=n % 9)
    posting.created_at = posting.updated_at = created
    posting.published_at = created + timedelta(hours=2) if published else None
