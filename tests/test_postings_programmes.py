"""Institution members' programmes: create, edit, publish, archive, delete, bad input."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao import search
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Programme, Skill

VALID = {
    "title": "中式烹调师（四级）培训",
    "description": "面向餐饮从业人员的热菜、冷拼与食品安全课程。",
    "modules": "食品安全与卫生 | 8\n刀工与火候｜24学时\n\n热菜制作 | 40",
    "outcomes": "能独立完成常见热菜\n掌握后厨食品安全规范",
    "skills": "中式烹调, 食品安全",
    "level": "L4",
    "certificate_kind": "skill_level",
    "certificate_name": "中式烹调师（四级）",
    "total_hours": "80",
    "mode": "offline",
    "district": "双井街道",
    "location": "双井职业技能培训中心",
    "capacity": "30",
    "fee": "2800",
    "subsidy_eligible": "y",
    "schedule": "每月开班，周末授课",
}


@pytest.fixture
def member(make, login):
    organisation = make.org("institution")
    user = make.user(organisation, "org_member")
    login(user)
    return user


def programme_count() -> int:
    return db.session.scalar(select(func.count(Programme.id)))


def test_create_programme_parses_modules_and_indexes(client, member):
    response = client.post("/my/programmes/new", data=VALID)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    programme = db.session.scalar(select(Programme))
    assert programme.status == "draft" and programme.organisation_id == member.organisation_id
    assert programme.modules == [
        {"name": "食品安全与卫生", "hours": 8},
        {"name": "刀工与火候", "hours": 24},
        {"name": "热菜制作", "hours": 40},
    ]
    assert programme.outcomes == ["能独立完成常见热菜", "掌握后厨食品安全规范"]
    assert sorted(s.name for s in programme.skills) == ["中式烹调", "食品安全"]
    assert programme.subsidy_eligible is True and programme.fee == 2800
    assert programme.certificate_name == "中式烹调师（四级）"
    assert search.ranked_ids("programme", "烹调 热菜") == [programme.id]
    assert "中式烹调师（四级）培训" in client.get("/my/programmes").get_data(as_text=True)


def test_no_certificate_needs_no_name_and_level_is_optional(client, member):
    data = {**VALID, "certificate_kind": "none", "certificate_name": "", "level": "", "fee": "0"}
    data.pop("subsidy_eligible")
    assert client.post("/my/programmes/new", data=data).status_code == 302
    programme = db.session.scalar(select(Programme))
    assert programme.level is None and programme.certificate_kind == "none"
    assert programme.subsidy_eligible is False and programme.fee == 0


def test_edit_round_trips_modules(client, member, make):
    programme = make.programme(member.organisation, status="published")
    html = client.get(f"/my/programmes/{programme.id}/edit").get_data(as_text=True)
    assert "高压安全与防护 | 16\n动力电池检测 | 24" in html
    response = client.post(
        f"/my/programmes/{programme.id}/edit", data={**VALID, "title": "西式面点师培训"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    programme = db.session.get(Programme, programme.id)
    assert programme.title == "西式面点师培训" and programme.status == "published"
    assert search.ranked_ids("programme", "面点") == [programme.id]


def test_publish_then_archive(client, member, make):
    programme = make.programme(member.organisation, status="draft")
    response = client.post(f"/my/programmes/{programme.id}/publish", follow_redirects=True)
    assert "培训项目已发布" in response.get_data(as_text=True)
    db.session.expire_all()
    programme = db.session.get(Programme, programme.id)
    assert programme.status == "published" and programme.published_at is not None
    client.post(f"/my/programmes/{programme.id}/archive")
    db.session.expire_all()
    assert db.session.get(Programme, programme.id).status == "archived"
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["programme.publish", "programme.archive"]


def test_unapproved_institution_cannot_publish(client, make, login):
    organisation = make.org("institution", status="pending")
    login(make.user(organisation))
    programme = make.programme(organisation, status="draft")
    response = client.post(f"/my/programmes/{programme.id}/publish", follow_redirects=True)
    assert "尚未通过协会审核" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Programme, programme.id).status == "draft"


@pytest.mark.parametrize(
    ("status", "action"),
    [("published", "publish"), ("archived", "publish"), ("archived", "archive"),
     ("published", "delete"), ("archived", "delete")],
)
def test_invalid_programme_transitions(client, member, make, status, action):
    programme = make.programme(member.organisation, status=status)
    client.post(f"/my/programmes/{programme.id}/{action}")
    db.session.expire_all()
    assert db.session.get(Programme, programme.id).status == status


def test_delete_draft_and_archive_referenced_draft(client, member, make, monkeypatch):
    from chanjiao.postings import services

    kept = make.programme(member.organisation, status="draft", title="被引用的草稿")
    gone = make.programme(member.organisation, status="draft", title="无人引用的草稿")
    monkeypatch.setattr(services, "_reference_checks", [lambda posting: posting.id == kept.id])
    client.post(f"/my/programmes/{gone.id}/delete")
    client.post(f"/my/programmes/{kept.id}/delete")
    db.session.expire_all()
    assert db.session.get(Programme, gone.id) is None
    assert db.session.get(Programme, kept.id).status == "archived"


BAD_INPUT = [
    ({"title": ""}, "title", "请填写项目名称"),
    ({"title": "长" * 101}, "title", "最多 100 个字"),
    ({"modules": "食品安全 | 8\n刀工与火候 二十四"}, "modules", "第 2 行“刀工与火候 二十四”格式不正确"),
    ({"modules": "食品安全 | 八"}, "modules", "第 1 行“食品安全 | 八”格式不正确"),
    ({"modules": " | 8"}, "modules", "第 1 行"),
    ({"modules": "食品安全 | 0"}, "modules", "学时应为 1 到 2000"),
    ({"modules": "甲 | 1 | 2"}, "modules", "格式不正确"),
    ({"modules": "名" * 201 + " | 4"}, "modules", "模块名称过长"),
    ({"outcomes": "成" * 201}, "outcomes", "第 1 行过长"),
    ({"total_hours": "70"}, "total_hours", "不能少于各模块学时之和（72）"),
    ({"total_hours": "0"}, "total_hours", "总学时应为 1 到"),
    ({"total_hours": "八十"}, "total_hours", "请输入整数"),
    ({"capacity": "0"}, "capacity", "招生人数应为 1 到"),
    ({"capacity": "x"}, "capacity", "请输入整数"),
    ({"fee": "-100"}, "fee", "费用应为 0 到"),
    ({"fee": ""}, "fee", "请填写培训费用"),
    ({"level": "L9"}, "level", "请选择列表中的等级"),
    ({"certificate_kind": "diploma"}, "certificate_kind", "请选择列表中的证书类型"),
    ({"certificate_name": ""}, "certificate_name", "有证书时请填写证书名称"),
    ({"certificate_name": "证" * 101}, "certificate_name", "最多 100 个字"),
    ({"mode": "xx"}, "mode", "请选择列表中的培训方式"),
    ({"district": "Chaoyang"}, "district", "请选择朝阳区的街道或地区"),
    ({"schedule": "周" * 201}, "schedule", "最多 200 个字"),
    ({"skills": ",".join(f"技能{i}" for i in range(31))}, "skills", "技能标签最多 30 个"),
]


@pytest.mark.parametrize(("override", "field", "message"), BAD_INPUT)
def test_bad_programme_input_is_named_and_nothing_written(client, member, override, field, message):
    response = client.post("/my/programmes/new", data={**VALID, **override})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="{field}-error"' in html, html[:200]
    start = html.index(f'id="{field}-error"')
    assert message in html[start:start + 400]
    assert programme_count() == 0
    assert db.session.scalar(select(func.count(Skill.id))) == 0


def test_bad_module_line_is_kept_in_the_textarea(client, member):
    html = client.post(
        "/my/programmes/new", data={**VALID, "modules": "甲 | 4\n乙没有学时"}
    ).get_data(as_text=True)
    assert "甲 | 4\n乙没有学时" in html


def test_programme_markup_is_escaped(client, member, make):
    script = "<script>alert(1)</script>"
    client.post("/my/programmes/new", data={**VALID, "title": script, "modules": f"{script} | 8"})
    programme = db.session.scalar(select(Programme))
    assert programme.title == script and programme.modules[0]["name"] == script
    programme.status = "published"
    db.session.commit()
    for url in ("/my/programmes", f"/programmes/{programme.id}", "/programmes", "/"):
        html = client.get(url).get_data(as_text=True)
        assert script not in html and "&lt;script&gt;" in html
