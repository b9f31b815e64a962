"""Association staff: counts, the approval queue, decisions and membership."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from chanjiao.errors import InvalidTransition, PermissionDenied
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Organisation
from chanjiao.staff import services


@pytest.fixture
def staff(make, login):
    user = make.user(None, role="staff", name="王审核")
    login(user)
    return user


def audit(organisation: Organisation) -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.object_type == "organisation", AuditLog.object_id == organisation.id)
            .order_by(AuditLog.id)
        )
    )


def test_index_shows_counts_and_the_queue_oldest_first(client, make, staff):
    old = make.org(status="pending", name="老申请企业", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    new = make.org(status="pending", name="新申请企业", created_at=datetime(2026, 3, 1, tzinfo=UTC))
    approved = make.org(kind="institution", status="approved", name="已通过学校")
    make.demand(make.org(), status="open")
    make.programme(approved, status="draft")
    response = client.get("/staff/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "待审核机构（2）" in html
    assert html.index("老申请企业") < html.index("新申请企业")
    assert "已通过学校" not in html
    counts = services.platform_counts()
    assert counts["organisations"]["enterprise"]["pending"] == 2
    assert counts["organisations"]["institution"]["approved"] == 1
    assert counts["demands"]["open"] == 1 and counts["programmes"]["draft"] == 1
    assert counts["users"]["staff"] == 1 and counts["users_total"] == 1
    assert [o.id for o in services.approval_queue()] == [old.id, new.id]


def test_organisation_list_filters_by_status_and_kind(client, make, staff):
    make.org(status="pending", name="待审企业")
    make.org(status="approved", name="通过企业")
    make.org(kind="institution", status="pending", name="待审学校")
    html = client.get("/staff/organisations?status=pending&kind=enterprise").get_data(as_text=True)
    assert "待审企业" in html and "通过企业" not in html and "待审学校" not in html
    html = client.get("/staff/organisations?status=bogus&kind=&page=-3").get_data(as_text=True)
    assert "待审企业" in html and "通过企业" in html and "待审学校" in html


def test_detail_shows_users_counts_and_history(client, make, staff):
    organisation = make.org(status="pending")
    member = make.user(organisation, name="赵成员")
    make.demand(organisation, status="draft")
    client.post(f"/staff/organisations/{organisation.id}/reject", data={"reason": "营业执照信息不符"})
    html = client.get(f"/staff/organisations/{organisation.id}").get_data(as_text=True)
    assert member.name in html and member.email in html
    assert "营业执照信息不符" in html and "王审核" in html and "驳回" in html


def test_approve_records_status_time_and_actor(client, make, staff):
    organisation = make.org(status="pending")
    response = client.post(f"/staff/organisations/{organisation.id}/approve", data={"reason": ""})
    assert response.status_code == 302
    db.session.refresh(organisation)
    assert organisation.status == "approved" and organisation.can_publish
    assert organisation.status_decided_at is not None
    [entry] = audit(organisation)
    assert entry.action == "organisation.approve" and entry.actor_id == staff.id
    assert entry.details == {"old": "pending", "new": "approved"}


@pytest.mark.parametrize(("start", "decision"), [("pending", "reject"), ("approved", "suspend")])
def test_reject_and_suspend_require_a_reason(client, make, staff, start, decision):
    organisation = make.org(status=start)
    response = client.post(f"/staff/organisations/{organisation.id}/{decision}", data={"reason": "  "})
    assert response.status_code == 400
    assert "理由" in response.get_data(as_text=True)
    db.session.refresh(organisation)
    assert organisation.status == start and audit(organisation) == []


def test_full_lifecycle_with_reasons(client, make, staff):
    organisation = make.org(status="pending")
    steps = [
        ("reject", "资料不全", "rejected"),
        ("approve", "补充材料后通过", "approved"),
        ("suspend", "发布虚假培训信息", "suspended"),
        ("reinstate", "", "approved"),
    ]
    for decision, reason, expected in steps:
        response = client.post(
            f"/staff/organisations/{organisation.id}/{decision}", data={"reason": reason}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        db.session.refresh(organisation)
        assert organisation.status == expected
        assert organisation.status_reason == reason
    entries = audit(organisation)
    assert [e.action for e in entries] == [f"organisation.{d}" for d, _, _ in steps]
    assert all(e.actor_id == staff.id for e in entries)
    assert [e.reason for e in entries] == [r for _, r, _ in steps]


@pytest.mark.parametrize(
    ("start", "decision"),
    [
        ("approved", "approve"),
        ("approved", "reject"),
        ("pending", "suspend"),
        ("pending", "reinstate"),
        ("rejected", "suspend"),
        ("suspended", "approve"),
    ],
)
def test_invalid_transitions_are_refused_with_a_message(client, make, staff, start, decision):
    organisation = make.org(status=start)
    response = client.post(
        f"/staff/organisations/{organisation.id}/{decision}", data={"reason": "理由"}
    )
    assert response.status_code == 400
    assert "的机构不能" in response.get_data(as_text=True)
    db.session.refresh(organisation)
    assert organisation.status == start
    with pytest.raises(InvalidTransition):
        services.decide(staff, organisation, decision, "理由")


def test_unknown_decision_is_404(client, make, staff):
    organisation = make.org(status="pending")
    assert client.post(f"/staff/organisations/{organisation.id}/delete").status_code == 404
    assert client.post("/staff/organisations/99999/approve").status_code == 404


def test_over_long_reason_is_refused(client, make, staff):
    organisation = make.org(status="pending")
    response = client.post(
        f"/staff/organisations/{organisation.id}/reject", data={"reason": "长" * 1001}
    )
    assert response.status_code == 400
    assert "理由不能超过 1000 个字符" in response.get_data(as_text=True)
    db.session.refresh(organisation)
    assert organisation.status == "pending"


def test_service_refuses_non_staff_actor(app, make):
    organisation = make.org(status="pending")
    admin = make.user(organisation)
    with pytest.raises(PermissionDenied):
        services.decide(admin, organisation, "approve")


def test_reason_markup_is_escaped(client, make, staff):
    organisation = make.org(status="pending")
    client.post(f"/staff/organisations/{organisation.id}/reject", data={"reason": "<b>不合格</b>"})
    html = client.get(f"/staff/organisations/{organisation.id}").get_data(as_text=True)
    assert "&lt;b&gt;不合格&lt;/b&gt;" in html and "<b>不合格</b>" not in html


def test_membership_is_recorded(client, make, staff):
    organisation = make.org()
    response = client.post(
        f"/staff/organisations/{organisation.id}/membership",
        data={"member_since": "2024-05-01", "founding_member": "y"},
    )
    assert response.status_code == 302
    db.session.refresh(organisation)
    assert organisation.member_since == date(2024, 5, 1) and organisation.founding_member
    [entry] = audit(organisation)
    assert entry.action == "organisation.membership" and entry.actor_id == staff.id
    # Clearing it again
    client.post(f"/staff/organisations/{organisation.id}/membership", data={"member_since": ""})
    db.session.refresh(organisation)
    assert organisation.member_since is None and not organisation.founding_member


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"member_since": "2024-13-45"}, "请输入有效的日期"),
        ({"member_since": "明天"}, "请输入有效的日期"),
        ({"member_since": (date.today() + timedelta(days=3)).isoformat()}, "入会日期不能晚于今天"),
        ({"member_since": "", "founding_member": "y"}, "创始会员须填写入会日期"),
    ],
)
def test_bad_membership_input(client, make, staff, data, message):
    organisation = make.org()
    response = client.post(f"/staff/organisations/{organisation.id}/membership", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.refresh(organisation)
    assert organisation.member_since is None and audit(organisation) == []


def test_users_list_searches_name_and_email(client, make, staff):
    organisation = make.org()
    make.user(organisation, name="孙悟空", email="sun@example.cn")
    make.user(organisation, name="猪八戒", email="zhu@example.cn")
    html = client.get("/staff/users?q=悟空").get_data(as_text=True)
    assert "sun@example.cn" in html and "zhu@example.cn" not in html
    html = client.get("/staff/users?q=%25").get_data(as_text=True)
    assert "sun@example.cn" not in html  # % is a literal, not a wildcard


def test_decision_without_csrf_is_refused(client, make, staff):
    organisation = make.org(status="pending")
    response = client.post(f"/staff/organisations/{organisation.id}/approve", csrf=False)
    assert response.status_code == 400
    db.session.refresh(organisation)
    assert organisation.status == "pending" and audit(organisation) == []


def test_staff_dashboard_redirects_to_staff_index(client, staff):
    assert client.get("/dashboard/").headers["Location"].endswith("/staff/")
