"""Skill autocomplete, staff merge and synonym editing, and the seed-skills command."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao import search
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Demand, Programme, Skill, demand_skills
from chanjiao.skills import find_skill, seed_vocabulary

SMALL_VOCABULARY = [
    ("桥式起重机司机", ["天车工", "行车工"]),
    ("养老护理", ["养老护理员", "老年照护"]),
    ("中式烹调", ["中餐烹饪"]),
]


@pytest.fixture
def staff(make, login):
    user = make.user(None, "staff")
    login(user)
    return user


def test_suggest_matches_names_and_synonyms(client, app):
    seed_vocabulary(SMALL_VOCABULARY)
    db.session.commit()
    assert client.get("/skills/suggest", query_string={"q": "天车"}).get_json() == ["桥式起重机司机", "天车工"]
    names = client.get("/skills/suggest", query_string={"q": "养老"}).get_json()
    assert names[0] == "养老护理" and "养老护理员" in names
    assert client.get("/skills/suggest", query_string={"q": "烹"}).get_json() == ["中式烹调", "中餐烹饪"]
    assert client.get("/skills/suggest", query_string={"q": ""}).get_json() == []
    assert client.get("/skills/suggest").get_json() == []
    assert client.get("/skills/suggest", query_string={"q": "x" * 500}).get_json() == []


def test_suggest_hides_merged_tags_and_caps_results(client, make):
    survivor = make.skill("养老护理")
    old = make.skill("老人护理")
    old.merged_into = survivor
    for n in range(30):
        make.skill(f"护理技能{n:02d}")
    db.session.commit()
    names = client.get("/skills/suggest", query_string={"q": "护理"}).get_json()
    assert "老人护理" not in names and len(names) == 20


def test_manage_lists_tags_with_usage_and_synonyms(client, make, staff):
    crane = make.skill("桥式起重机司机", ["天车工"])
    enterprise = make.org("enterprise")
    for _ in range(2):
        demand = make.demand(enterprise)
        demand.skills = [crane]
    programme = make.programme(make.org("institution"))
    programme.skills = [crane]
    db.session.commit()
    html = client.get("/skills/manage").get_data(as_text=True)
    row = html[html.index("桥式起重机司机"):]
    assert "<td>2</td>" in row[:200] and "<td>1</td>" in row[:200]
    assert 'value="天车工"' in html
    html = client.get("/skills/manage", query_string={"q": "天车"}).get_data(as_text=True)
    assert "共 1 个标签" in html
    assert client.get("/skills/manage", query_string={"page": "zz"}).status_code == 200


def test_merge_moves_links_without_duplicates_and_keeps_names(client, make, staff):
    source = make.skill("天车", ["吊车工"])
    target = make.skill("桥式起重机司机", ["行车工"])
    enterprise = make.org("enterprise")
    both = make.demand(enterprise, title="两个标签都有")
    both.skills = [source, target]
    only_source = make.demand(enterprise, title="只有旧标签")
    only_source.skills = [source]
    programme = make.programme(make.org("institution"))
    programme.skills = [source]
    db.session.commit()
    search.reindex_all()
    db.session.commit()
    source_id, target_id = source.id, target.id

    response = client.post("/skills/merge", data={"source": "天车", "target": "桥式起重机司机"}, follow_redirects=True)
    assert "已将“天车”合并到“桥式起重机司机”" in response.get_data(as_text=True)

    db.session.expire_all()
    source, target = db.session.get(Skill, source_id), db.session.get(Skill, target_id)
    assert source.merged_into_id == target_id
    assert target.synonyms == ["行车工", "天车", "吊车工"]
    for demand in db.session.scalars(select(Demand)):
        assert [s.id for s in demand.skills] == [target_id]
    assert [s.id for s in db.session.scalar(select(Programme)).skills] == [target_id]
    links = db.session.execute(select(demand_skills.c.skill_id, func.count()).group_by(demand_skills.c.skill_id)).all()
    assert links == [(target_id, 2)]
    # Old names and synonyms resolve to the survivor; the index knows the survivor's name.
    assert find_skill("天车").id == target_id and find_skill("吊车工").id == target_id
    assert set(search.ranked_ids("demand", "桥式 司机")) == {d.id for d in db.session.scalars(select(Demand))}
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "skill.merge"))
    assert entry.object_id == target_id and entry.details["source_name"] == "天车"
    assert entry.actor_id == staff.id
    # Merged tags no longer appear in the list.
    assert ">天车<" not in client.get("/skills/manage").get_data(as_text=True)


def test_merge_chain_points_old_merges_at_the_survivor(client, make, staff):
    a, b, c = make.skill("甲"), make.skill("乙"), make.skill("丙")
    a.merged_into = b
    db.session.commit()
    client.post("/skills/merge", data={"source": "乙", "target": "丙"})
    db.session.expire_all()
    assert db.session.get(Skill, a.id).merged_into_id == c.id
    assert find_skill("甲").id == c.id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"source": "甲", "target": "甲"}, "不能把标签合并到它自己"),
        ({"source": "不存在", "target": "甲"}, "没有名为“不存在”的技能标签"),
        ({"source": "甲", "target": "已合并"}, "没有名为“已合并”的技能标签"),
        ({"source": "", "target": "甲"}, "请填写要合并的标签"),
        ({"source": "甲" * 60, "target": "乙"}, "最多 50 个字"),
    ],
)
def test_bad_merges_are_refused_and_change_nothing(client, make, staff, data, message):
    first, second = make.skill("甲"), make.skill("乙")
    merged = make.skill("已合并")
    merged.merged_into = second
    db.session.commit()
    response = client.post("/skills/merge", data=data, follow_redirects=True)
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Skill, first.id).merged_into_id is None
    assert db.session.get(Skill, second.id).synonyms == []
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0


def test_edit_synonyms(client, make, staff):
    skill = make.skill("中式烹调", ["旧同义词"])
    response = client.post(
        f"/skills/{skill.id}/synonyms", data={"synonyms": "中餐烹饪，中餐厨师、 中式烹调 ,中餐烹饪"},
        follow_redirects=True,
    )
    assert "已更新“中式烹调”的同义词" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Skill, skill.id).synonyms == ["中餐烹饪", "中餐厨师"]
    assert find_skill("中餐厨师").id == skill.id and find_skill("旧同义词") is None
    assert db.session.scalar(select(AuditLog.action)) == "skill.synonyms"


def test_synonym_owned_by_another_tag_is_refused(client, make, staff):
    make.skill("西式面点", ["西点"])
    skill = make.skill("中式面点", [])
    response = client.post(f"/skills/{skill.id}/synonyms", data={"synonyms": "中点、西点"}, follow_redirects=True)
    assert "“西点”已属于技能标签“西式面点”" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Skill, skill.id).synonyms == []


def test_synonyms_of_unknown_or_merged_tag_is_404(client, make, staff):
    survivor, merged = make.skill("甲"), make.skill("乙")
    merged.merged_into = survivor
    db.session.commit()
    assert client.post("/skills/999999/synonyms", data={"synonyms": "x"}).status_code == 404
    assert client.post(f"/skills/{merged.id}/synonyms", data={"synonyms": "x"}).status_code == 404


def test_too_many_synonyms_are_refused(client, make, staff):
    skill = make.skill("电工")
    many = "、".join(f"电工别名{i}" for i in range(31))
    response = client.post(f"/skills/{skill.id}/synonyms", data={"synonyms": many}, follow_redirects=True)
    assert "同义词最多 30 个" in response.get_data(as_text=True)


def test_merge_service_refuses_non_staff(app, make):
    from chanjiao.errors import PermissionDenied
    from chanjiao.postings.services import merge_skills

    a, b = make.skill("甲"), make.skill("乙")
    with pytest.raises(PermissionDenied):
        merge_skills(make.user(make.org()), a.id, b.id)


def test_seed_skills_command(app, runner, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("chanjiao.skill_vocabulary")
    fake.VOCABULARY = tuple((name, tuple(synonyms)) for name, synonyms in SMALL_VOCABULARY)
    monkeypatch.setitem(sys.modules, "chanjiao.skill_vocabulary", fake)
    result = runner.invoke(args=["seed-skills"])
    assert result.exit_code == 0, result.output
    assert "3 tags added" in result.output
    assert find_skill("天车工").name == "桥式起重机司机"
    again = runner.invoke(args=["seed-skills"])
    assert "0 tags added" in again.output


def test_seed_skills_with_the_shipped_vocabulary(app, runner):
    pytest.importorskip("chanjiao.skill_vocabulary")
    result = runner.invoke(args=["seed-skills"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count(Skill.id))) > 50


def test_merge_with_control_characters_or_huge_ids_never_500(client, make, staff):
    make.skill("甲")
    response = client.post("/skills/merge", data={"source": "甲\x00", "target": "乙\x00"})
    assert response.status_code == 302
    assert client.post("/skills/99999999999999999999/synonyms", data={"synonyms": "x"}).status_code == 404


def test_autocomplete_script_is_served_locally(client):
    response = client.get("/static/js/skills.js")
    assert response.status_code == 200 and b"data-skill-suggest" in response.data
    response.close()
    html = client.get("/demands").get_data(as_text=True)
    assert "/static/js/skills.js" in html and "http" not in html.split("skills.js")[0].rsplit("<script", 1)[1]
