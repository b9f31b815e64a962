"""Enterprise members' demands: create, edit, publish, close, archive, delete, bad input."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao import search
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Demand, Skill

VALID = {
    "title": "养老护理员",
    "occupation": "养老护理员",
    "description": "为机构内失能老人提供生活照料与康复辅助。",
    "duties": "协助老人进食、清洁与翻身\n\n记录护理日志",
    "requirements": "持健康证\n有责任心",
    "skills": "养老护理，失能照护、康复辅助",
    "skill_level": "L4",
    "headcount": "8",
    "district": "常营地区",
    "location": "常营民族家园养老驿站",
    "mode": "blended",
    "desired_start": "2026-09-01",
    "budget_per_person": "2500",
}


@pytest.fixture
def member(make, login):
    organisation = make.org("enterprise")
    user = make.user(organisation, "org_member")
    login(user)
    return user


def demand_count() -> int:
    return db.session.scalar(select(func.count(Demand.id)))


def test_create_demand_saves_a_draft_with_lists_tags_and_index(client, member):
    response = client.post("/my/demands/new", data=VALID)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    demand = db.session.scalar(select(Demand))
    assert demand.status == "draft" and demand.organisation_id == member.organisation_id
    assert demand.created_by_id == member.id
    assert demand.duties == ["协助老人进食、清洁与翻身", "记录护理日志"]
    assert demand.requirements == ["持健康证", "有责任心"]
    assert sorted(s.name for s in demand.skills) == sorted(["养老护理", "失能照护", "康复辅助"])
    assert demand.headcount == 8 and demand.budget_per_person == 2500
    assert demand.desired_start.isoformat() == "2026-09-01"
    assert demand.mode == "blended" and demand.published_at is None
    assert search.ranked_ids("demand", "养老 护理") == [demand.id]
    listing = client.get("/my/demands").get_data(as_text=True)
    assert "养老护理员" in listing and "草稿" in listing


def test_new_form_renders_with_labels_and_autocomplete_hook(client, member):
    html = client.get("/my/demands/new").get_data(as_text=True)
    assert 'for="title"' in html and 'for="skill_level"' in html
    assert 'list="skill-suggestions"' in html and "data-skill-suggest" in html
    assert "js/skills.js" in html


def test_synonyms_resolve_to_the_canonical_tag(client, member, make):
    crane = make.skill("桥式起重机司机", ["天车工"])
    client.post("/my/demands/new", data={**VALID, "skills": "天车工、桥式起重机司机"})
    demand = db.session.scalar(select(Demand))
    assert [s.id for s in demand.skills] == [crane.id]


def test_edit_changes_fields_and_reindexes(client, member, make):
    demand = make.demand(member.organisation, status="open", title="电工")
    search.index_demand(demand)
    db.session.commit()
    page = client.get(f"/my/demands/{demand.id}/edit")
    assert page.status_code == 200 and "电工" in page.get_data(as_text=True)
    response = client.post(f"/my/demands/{demand.id}/edit", data={**VALID, "title": "中式烹调师"})
    assert response.status_code == 302
    db.session.expire_all()
    demand = db.session.get(Demand, demand.id)
    assert demand.title == "中式烹调师" and demand.status == "open"
    assert search.ranked_ids("demand", "烹调") == [demand.id]
    assert search.ranked_ids("demand", "电工") == []


def test_edit_page_prefills_lists_and_tags(client, member, make):
    demand = make.demand(member.organisation, status="draft")
    demand.skills = [make.skill("动力电池检测")]
    db.session.commit()
    html = client.get(f"/my/demands/{demand.id}/edit").get_data(as_text=True)
    assert "动力电池故障诊断\n高压系统安全操作" in html
    assert 'value="动力电池检测"' in html


def test_publish_close_and_republish(client, member, make):
    demand = make.demand(member.organisation, status="draft")
    response = client.post(f"/my/demands/{demand.id}/publish", follow_redirects=True)
    assert "需求已发布" in response.get_data(as_text=True)
    db.session.expire_all()
    demand = db.session.get(Demand, demand.id)
    assert demand.status == "open" and demand.published_at is not None
    client.post(f"/my/demands/{demand.id}/close")
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == "closed"
    client.post(f"/my/demands/{demand.id}/publish")
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == "open"
    actions = db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["demand.publish", "demand.close", "demand.publish"]


def test_unapproved_organisation_saves_drafts_but_cannot_publish(client, make, login):
    pending = make.org("enterprise", status="pending")
    login(make.user(pending))
    assert "尚未通过协会审核" in client.get("/my/demands").get_data(as_text=True)
    assert client.post("/my/demands/new", data=VALID).status_code == 302
    demand = db.session.scalar(select(Demand))
    response = client.post(f"/my/demands/{demand.id}/publish", follow_redirects=True)
    assert "尚未通过协会审核" in response.get_data(as_text=True)
    db.session.expire_all()
    demand = db.session.get(Demand, demand.id)
    assert demand.status == "draft" and demand.published_at is None
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0


@pytest.mark.parametrize("status", ["suspended", "rejected"])
def test_suspended_or_rejected_organisation_cannot_publish(client, make, login, status):
    organisation = make.org("enterprise", status=status)
    login(make.user(organisation))
    demand = make.demand(organisation, status="closed")
    client.post(f"/my/demands/{demand.id}/publish")
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == "closed"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("open", "publish"),
        ("draft", "close"),
        ("closed", "close"),
        ("archived", "publish"),
        ("archived", "close"),
        ("archived", "archive"),
        ("open", "delete"),
        ("closed", "delete"),
        ("archived", "delete"),
    ],
)
def test_invalid_transitions_are_refused(client, member, make, status, action):
    demand = make.demand(member.organisation, status=status)
    response = client.post(f"/my/demands/{demand.id}/{action}", follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "不能执行此操作" in html or "只能删除草稿" in html
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == status


def test_archive_keeps_the_row(client, member, make):
    demand = make.demand(member.organisation, status="open")
    client.post(f"/my/demands/{demand.id}/archive")
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == "archived"
    # Archived demands cannot be edited any more.
    response = client.get(f"/my/demands/{demand.id}/edit", follow_redirects=True)
    assert "已归档的需求不能再编辑" in response.get_data(as_text=True)


def test_delete_removes_an_unreferenced_draft(client, member, make):
    demand = make.demand(member.organisation, status="draft")
    demand.skills = [make.skill("电工")]
    search.index_demand(demand)
    db.session.commit()
    response = client.post(f"/my/demands/{demand.id}/delete", follow_redirects=True)
    assert "草稿已删除" in response.get_data(as_text=True)
    assert demand_count() == 0
    assert db.session.scalar(select(func.count(Skill.id))) == 1  # the tag stays
    assert search.ranked_ids("demand", "电工") == []
    assert db.session.scalar(select(AuditLog.action)) == "demand.delete"


def test_delete_of_a_referenced_draft_archives_it(client, member, make, monkeypatch):
    from chanjiao.postings import services

    demand = make.demand(member.organisation, status="draft")
    monkeypatch.setattr(services, "_reference_checks", [lambda posting: posting.id == demand.id])
    response = client.post(f"/my/demands/{demand.id}/delete", follow_redirects=True)
    assert "已改为归档" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == "archived"


def test_is_referenced_sees_foreign_keys_from_other_tables(app, make):
    """Any table with a foreign key to demand.id counts as a reference (matches, curation)."""
    import sqlalchemy as sa

    from chanjiao.postings.services import is_referenced

    demand = make.demand(make.org(), status="draft")
    assert is_referenced(demand) is False
    note = sa.Table(
        "tmp_demand_note", db.metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("demand_id", sa.ForeignKey("demand.id")),
    )
    try:
        note.create(db.session.connection())
        db.session.execute(note.insert().values(id=1, demand_id=demand.id))
        assert is_referenced(demand) is True
    finally:
        db.session.rollback()
        db.metadata.remove(note)
        note.drop(db.engine, checkfirst=True)


# --------------------------------------------------------------------------- bad input


BAD_INPUT = [
    ({"title": ""}, "title", "请填写岗位名称"),
    ({"title": "长" * 101}, "title", "最多 100 个字"),
    ({"occupation": "工" * 101}, "occupation", "最多 100 个字"),
    ({"description": "字" * 5001}, "description", "最多 5000 个字"),
    ({"location": "地" * 201}, "location", "最多 200 个字"),
    ({"duties": "职责\n" + "很长" * 101}, "duties", "第 2 行过长"),
    ({"requirements": "\n".join(f"要求{i}" for i in range(51))}, "requirements", "最多 50 行"),
    ({"headcount": "0"}, "headcount", "人数应为 1 到 10000 之间的整数"),
    ({"headcount": "-3"}, "headcount", "人数应为 1 到 10000 之间的整数"),
    ({"headcount": "10001"}, "headcount", "人数应为 1 到 10000 之间的整数"),
    ({"headcount": "五个"}, "headcount", "请输入整数"),
    ({"headcount": "2.5"}, "headcount", "请输入整数"),
    ({"headcount": "9" * 400}, "headcount", "请输入整数"),
    ({"headcount": ""}, "headcount", "请填写需求人数"),
    ({"budget_per_person": "-1"}, "budget_per_person", "预算应为 0 到"),
    ({"budget_per_person": "abc"}, "budget_per_person", "请输入整数"),
    ({"skill_level": "XYZ"}, "skill_level", "请选择列表中的技能等级"),
    ({"skill_level": ""}, "skill_level", "请选择技能等级"),
    ({"mode": "teleport"}, "mode", "请选择列表中的培训方式"),
    ({"district": "海淀区"}, "district", "请选择朝阳区的街道或地区"),
    ({"desired_start": "2026-13-45"}, "desired_start", "请输入有效日期"),
    ({"desired_start": "明天"}, "desired_start", "请输入有效日期"),
    ({"desired_start": "1900-01-01"}, "desired_start", "日期超出合理范围"),
    ({"skills": "、".join(f"技能{i}" for i in range(31))}, "skills", "技能标签最多 30 个"),
    ({"skills": "技" * 51}, "skills", "过长"),
]


@pytest.mark.parametrize(("override", "field", "message"), BAD_INPUT)
def test_bad_input_is_named_next_to_the_field_and_nothing_is_written(
    client, member, override, field, message
):
    response = client.post("/my/demands/new", data={**VALID, **override})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="{field}-error"' in html
    error_start = html.index(f'id="{field}-error"')
    assert message in html[error_start:error_start + 400]
    assert demand_count() == 0
    assert db.session.scalar(select(func.count(Skill.id))) == 0


def test_bad_input_on_edit_changes_nothing(client, member, make):
    demand = make.demand(member.organisation, status="open", title="原标题")
    response = client.post(
        f"/my/demands/{demand.id}/edit", data={**VALID, "title": "新标题", "headcount": "-1"}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).title == "原标题"


def test_missing_fields_altogether_are_reported_not_500(client, member):
    response = client.post("/my/demands/new", data={})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    for message in ("请填写岗位名称", "请选择技能等级", "请填写需求人数", "请选择所在街道或地区", "请选择培训方式"):
        assert message in html
    assert demand_count() == 0


def test_markup_is_stored_as_typed_and_escaped(client, member, make):
    script = "<script>alert('x')</script>"
    client.post("/my/demands/new", data={**VALID, "title": script, "duties": script})
    demand = db.session.scalar(select(Demand))
    assert demand.title == script and demand.duties == [script]
    for url in ("/my/demands", f"/my/demands/{demand.id}/preview", f"/my/demands/{demand.id}/edit"):
        html = client.get(url).get_data(as_text=True)
        assert script not in html and "&lt;script&gt;" in html
    demand.status = "open"
    db.session.commit()
    for url in ("/demands", f"/demands/{demand.id}", "/"):
        html = client.get(url).get_data(as_text=True)
        assert script not in html and "&lt;script&gt;" in html


def test_control_characters_are_refused_naming_the_field_not_a_500(client, member):
    """PostgreSQL refuses NUL in text; the form names the field instead of storing or dropping it."""
    data = {**VALID, "title": "养老\x00护理员", "duties": "职责\x00一\n职责二"}
    response = client.post("/my/demands/new", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "岗位名称含有不可见的控制字符（U+0000）" in html
    assert "岗位职责含有不可见的控制字符（U+0000）" in html
    assert db.session.scalar(select(func.count()).select_from(Demand)) == 0


def test_zero_width_characters_pasted_from_word_are_stripped(client, member):
    data = {**VALID, "title": "\ufeff养老\u200b护理员\u200d", "skills": "养老\u200c护理"}
    assert client.post("/my/demands/new", data=data).status_code == 302
    demand = db.session.scalar(select(Demand))
    assert demand.title == "养老护理员"
    assert [s.name for s in demand.skills] == ["养老护理"]


@pytest.mark.parametrize("suffix", ["edit", "preview"])
def test_ids_beyond_the_integer_range_are_404(client, member, suffix):
    assert client.get(f"/my/demands/99999999999999999999/{suffix}").status_code == 404
    assert client.post("/my/demands/99999999999999999999/publish").status_code == 404


def test_a_conflicting_concurrent_save_is_a_form_message_not_a_500(client, member, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    from chanjiao.postings import services

    def clash(actor, data):
        raise IntegrityError("INSERT INTO skill", {}, Exception("duplicate key"))

    monkeypatch.setattr(services, "create_demand", clash)
    response = client.post("/my/demands/new", data=VALID)
    assert response.status_code == 409
    assert "请重新提交" in response.get_data(as_text=True)
    assert demand_count() == 0
