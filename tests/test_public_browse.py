"""Public browsing: visibility, Chinese search, filters, pagination, detail pages, home."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chanjiao import search
from chanjiao.extensions import db


def _index(*postings):
    for posting in postings:
        if hasattr(posting, "skill_level"):
            search.index_demand(posting)
        else:
            search.index_programme(posting)
    db.session.commit()


def _titles(html: str, titles) -> list[str]:
    """The given titles in the order they appear in ``html``."""
    found = [(html.index(t), t) for t in titles if t in html]
    return [t for _pos, t in sorted(found)]


@pytest.fixture
def orgs(make):
    return {
        "enterprise": make.org("enterprise", industry="elderly_care"),
        "internet": make.org("enterprise", industry="internet"),
        "institution": make.org("institution"),
        "suspended_enterprise": make.org("enterprise", status="suspended"),
        "pending_institution": make.org("institution", status="pending"),
    }


def test_only_open_demands_of_approved_enterprises_are_listed(client, make, orgs):
    make.demand(orgs["enterprise"], status="open", title="公开需求甲")
    make.demand(orgs["enterprise"], status="draft", title="草稿需求乙")
    make.demand(orgs["enterprise"], status="closed", title="关闭需求丙")
    make.demand(orgs["enterprise"], status="archived", title="归档需求丁")
    make.demand(orgs["suspended_enterprise"], status="open", title="暂停机构需求戊")
    html = client.get("/demands").get_data(as_text=True)
    assert "公开需求甲" in html
    for hidden in ("草稿需求乙", "关闭需求丙", "归档需求丁", "暂停机构需求戊"):
        assert hidden not in html
    assert "共 1 条需求" in html


def test_only_published_programmes_of_approved_institutions_are_listed(client, make, orgs):
    make.programme(orgs["institution"], status="published", title="公开项目甲")
    make.programme(orgs["institution"], status="draft", title="草稿项目乙")
    make.programme(orgs["institution"], status="archived", title="归档项目丙")
    make.programme(orgs["pending_institution"], status="published", title="待审机构项目丁")
    html = client.get("/programmes").get_data(as_text=True)
    assert "公开项目甲" in html
    for hidden in ("草稿项目乙", "归档项目丙", "待审机构项目丁"):
        assert hidden not in html


def test_cards_show_the_key_facts(client, make, orgs):
    demand = make.demand(orgs["enterprise"], title="养老护理员", headcount=12, mode="blended", skill_level="L3")
    demand.skills = [make.skill("失能照护")]
    make.programme(orgs["institution"], title="电工培训", fee=1500, total_hours=64,
                   subsidy_eligible=True, certificate_name="低压电工作业证",
                   certificate_kind="special_operation")
    db.session.commit()
    demands = client.get("/demands").get_data(as_text=True)
    for text in ("养老护理员", orgs["enterprise"].name, "失能照护", "三级/高级工", "混合", "东坝地区", "12"):
        assert text in demands
    programmes = client.get("/programmes").get_data(as_text=True)
    for text in ("电工培训", orgs["institution"].name, "64", "1500 元/人", "低压电工作业证", "补贴性培训"):
        assert text in programmes


@pytest.mark.parametrize("status", ["draft", "closed", "archived"])
def test_detail_of_a_non_public_demand_is_404(client, make, orgs, status):
    demand = make.demand(orgs["enterprise"], status=status)
    assert client.get(f"/demands/{demand.id}").status_code == 404


@pytest.mark.parametrize("status", ["draft", "archived"])
def test_detail_of_a_non_public_programme_is_404(client, make, orgs, status):
    programme = make.programme(orgs["institution"], status=status)
    assert client.get(f"/programmes/{programme.id}").status_code == 404


def test_detail_of_a_suspended_organisations_posting_is_404(client, make, orgs):
    demand = make.demand(orgs["suspended_enterprise"], status="open")
    programme = make.programme(orgs["pending_institution"], status="published")
    assert client.get(f"/demands/{demand.id}").status_code == 404
    assert client.get(f"/programmes/{programme.id}").status_code == 404
    assert client.get("/demands/987654").status_code == 404


def test_public_detail_pages_show_lists_and_modules(client, make, orgs):
    demand = make.demand(orgs["enterprise"], title="动力电池检修工", budget_per_person=3000)
    programme = make.programme(orgs["institution"], title="高压安全课程")
    html = client.get(f"/demands/{demand.id}").get_data(as_text=True)
    assert "动力电池检修工" in html and "动力电池故障诊断" in html and "持有低压电工作业证" in html
    assert "3000 元" in html and "预览" not in html
    html = client.get(f"/programmes/{programme.id}").get_data(as_text=True)
    assert "高压安全与防护" in html and "能独立完成高压断电与验电" in html and "汽车维修工（四级）" in html


def test_staff_and_own_members_may_preview_drafts(client, make, login, orgs):
    demand = make.demand(orgs["enterprise"], status="draft", title="内部草稿")
    programme = make.programme(orgs["institution"], status="draft", title="项目草稿")
    login(make.user(orgs["enterprise"], "org_member"))
    assert client.get(f"/demands/{demand.id}").status_code == 200
    preview = client.get(f"/my/demands/{demand.id}/preview").get_data(as_text=True)
    assert "内部草稿" in preview and "预览" in preview
    assert client.get(f"/programmes/{programme.id}").status_code == 404  # not theirs
    client.post("/logout")
    login(make.user(None, "staff"))
    for url in (f"/demands/{demand.id}", f"/programmes/{programme.id}"):
        response = client.get(url)
        assert response.status_code == 200 and "预览" in response.get_data(as_text=True)


def test_chinese_multi_term_search_keeps_relevance_order(client, make, orgs):
    title_hit = make.demand(orgs["enterprise"], title="新能源汽车电池维修工", description="")
    body_hit = make.demand(orgs["enterprise"], title="汽车销售顾问", description="了解新能源汽车电池基础知识",
                           duties=[], requirements=[])
    other = make.demand(orgs["enterprise"], title="中式烹调师", description="热菜", duties=[], requirements=[])
    _index(title_hit, body_hit, other)
    html = client.get("/demands", query_string={"q": "新能源 电池"}).get_data(as_text=True)
    assert _titles(html, ["新能源汽车电池维修工", "汽车销售顾问", "中式烹调师"]) == [
        "新能源汽车电池维修工", "汽车销售顾问",
    ]
    # Segmentation, not one substring: the words need not be adjacent or in order.
    html = client.get("/demands", query_string={"q": "电池 新能源汽车"}).get_data(as_text=True)
    assert "新能源汽车电池维修工" in html and "中式烹调师" not in html
    html = client.get("/demands", query_string={"q": "电池 烹调"}).get_data(as_text=True)
    assert "共 0 条需求" in html and "没有符合条件的需求" in html


def test_search_does_not_reveal_hidden_postings(client, make, orgs):
    hidden = make.programme(orgs["institution"], status="draft", title="保密的无人机培训")
    shown = make.programme(orgs["institution"], status="published", title="无人机驾驶员培训")
    _index(hidden, shown)
    html = client.get("/programmes", query_string={"q": "无人机"}).get_data(as_text=True)
    assert "无人机驾驶员培训" in html and "保密的无人机培训" not in html


def test_programme_search_combines_with_filters(client, make, orgs):
    online = make.programme(orgs["institution"], title="直播电商运营（线上）", mode="online")
    offline = make.programme(orgs["institution"], title="直播电商运营（线下）", mode="offline")
    _index(online, offline)
    html = client.get("/programmes", query_string={"q": "直播 运营", "mode": "online"}).get_data(as_text=True)
    assert "直播电商运营（线上）" in html and "直播电商运营（线下）" not in html


def test_newest_first_without_a_query(client, make, orgs):
    now = datetime.now(UTC)
    make.demand(orgs["enterprise"], title="较早的需求", published_at=now - timedelta(days=3))
    make.demand(orgs["enterprise"], title="最新的需求", published_at=now)
    make.demand(orgs["enterprise"], title="中间的需求", published_at=now - timedelta(days=1))
    html = client.get("/demands").get_data(as_text=True)
    assert _titles(html, ["较早的需求", "最新的需求", "中间的需求"]) == ["最新的需求", "中间的需求", "较早的需求"]


def test_demand_filters(client, make, orgs):
    cook = make.skill("中式烹调", ["中餐烹饪"])
    a = make.demand(orgs["enterprise"], title="需求A", skill_level="L3", mode="online", district="望京街道")
    a.skills = [cook]
    db.session.commit()
    make.demand(orgs["internet"], title="需求B", skill_level="L5", mode="offline", district="双井街道")
    cases = [
        ({"skill": "中式烹调"}, "需求A"),
        ({"skill": "中餐烹饪"}, "需求A"),  # a synonym filters by its tag
        ({"level": "L3"}, "需求A"),
        ({"mode": "offline"}, "需求B"),
        ({"district": "双井街道"}, "需求B"),
        ({"industry": "elderly_care"}, "需求A"),
        ({"industry": "internet", "mode": "offline"}, "需求B"),
    ]
    for args, expected in cases:
        html = client.get("/demands", query_string=args).get_data(as_text=True)
        assert _titles(html, ["需求A", "需求B"]) == [expected], args
    html = client.get("/demands", query_string={"industry": "internet", "mode": "online"}).get_data(as_text=True)
    assert _titles(html, ["需求A", "需求B"]) == []


def test_programme_filters(client, make, orgs):
    a = make.programme(orgs["institution"], title="项目A", level="L2", certificate_kind="special_operation",
                       mode="blended", district="望京街道", subsidy_eligible=True)
    a.skills = [make.skill("焊接")]
    db.session.commit()
    make.programme(orgs["institution"], title="项目B", level="L4", certificate_kind="none",
                   certificate_name="", mode="offline", district="常营地区", subsidy_eligible=False)
    cases = [
        ({"skill": "焊接"}, ["项目A"]),
        ({"level": "L4"}, ["项目B"]),
        ({"certificate": "special_operation"}, ["项目A"]),
        ({"certificate": "none"}, ["项目B"]),
        ({"mode": "blended"}, ["项目A"]),
        ({"district": "常营地区"}, ["项目B"]),
        ({"subsidy": "1"}, ["项目A"]),
        ({"level": "L2", "district": "常营地区"}, []),
    ]
    for args, expected in cases:
        html = client.get("/programmes", query_string=args).get_data(as_text=True)
        assert _titles(html, ["项目A", "项目B"]) == expected, args


@pytest.mark.parametrize(
    "args",
    [
        {"page": "abc"},
        {"page": "-5"},
        {"page": "99999999999999999999999"},
        {"level": "XYZ"},
        {"mode": "<script>"},
        {"district": "海淀区"},
        {"industry": "mining"},
        {"certificate": "phd"},
        {"skill": "不存在的技能"},
        {"q": "，。！" * 50},
        {"q": "<script>alert(1)</script>"},
    ],
)
def test_invalid_filter_values_never_500(client, make, orgs, args):
    make.demand(orgs["enterprise"], title="任意需求")
    make.programme(orgs["institution"], title="任意项目")
    for url in ("/demands", "/programmes"):
        response = client.get(url, query_string=args)
        assert response.status_code == 200
        assert "<script>alert" not in response.get_data(as_text=True)


def test_invalid_filter_values_are_explained_and_ignored(client, make, orgs):
    make.demand(orgs["enterprise"], title="仍然显示的需求")
    html = client.get("/demands", query_string={"level": "XYZ", "mode": "fly"}).get_data(as_text=True)
    assert "已忽略" in html and "技能等级" in html and "仍然显示的需求" in html
    html = client.get("/demands", query_string={"skill": "不存在的技能"}).get_data(as_text=True)
    assert "没有找到技能标签“不存在的技能”" in html


def test_pagination_uses_page_size_and_keeps_filters(app, client, make, orgs):
    app.config["PAGE_SIZE"] = 3
    now = datetime.now(UTC)
    for n in range(7):
        make.programme(orgs["institution"], title=f"分页项目{n}号", mode="online",
                       published_at=now - timedelta(hours=n))
    make.programme(orgs["institution"], title="线下项目", mode="offline")
    first = client.get("/programmes", query_string={"mode": "online"}).get_data(as_text=True)
    assert "第 1 / 3 页" in first
    assert _titles(first, [f"分页项目{n}号" for n in range(7)]) == ["分页项目0号", "分页项目1号", "分页项目2号"]
    assert "mode=online" in first and "page=2" in first
    third = client.get("/programmes", query_string={"mode": "online", "page": "3"}).get_data(as_text=True)
    assert _titles(third, [f"分页项目{n}号" for n in range(7)]) == ["分页项目6号"]
    assert "线下项目" not in third
    # Beyond the last page shows the last page rather than an error.
    beyond = client.get("/programmes", query_string={"mode": "online", "page": "40"}).get_data(as_text=True)
    assert "第 3 / 3 页" in beyond


def test_search_results_are_paginated_in_relevance_order(app, client, make, orgs):
    app.config["PAGE_SIZE"] = 2
    strong = make.demand(orgs["enterprise"], title="焊工 焊接", description="焊接")
    medium = make.demand(orgs["enterprise"], title="焊工", description="", duties=[], requirements=[])
    weak = make.demand(orgs["enterprise"], title="装配工", description="偶尔焊接", duties=[], requirements=[])
    _index(strong, medium, weak)
    ranked = search.ranked_ids("demand", "焊接")
    page1 = client.get("/demands", query_string={"q": "焊接"}).get_data(as_text=True)
    page2 = client.get("/demands", query_string={"q": "焊接", "page": 2}).get_data(as_text=True)
    shown = [d for d in (strong, medium, weak) if d.id in ranked]
    order = sorted(shown, key=lambda d: ranked.index(d.id))
    assert f"/demands/{order[0].id}\"" in page1
    assert f"/demands/{order[-1].id}\"" in page2


def test_filter_controls_are_labelled(client):
    html = client.get("/programmes").get_data(as_text=True)
    for control in ("filter-q", "filter-skill", "filter-level", "filter-mode", "filter-district", "filter-certificate"):
        assert f'for="{control}"' in html and f'id="{control}"' in html
    html = client.get("/demands").get_data(as_text=True)
    assert 'for="filter-industry"' in html


def test_home_shows_latest_postings_and_public_counts(client, make, orgs):
    make.demand(orgs["enterprise"], title="首页最新需求")
    make.demand(orgs["suspended_enterprise"], title="不应出现的需求")
    make.programme(orgs["institution"], title="首页最新项目")
    html = client.get("/").get_data(as_text=True)
    assert "首页最新需求" in html and "首页最新项目" in html
    assert "不应出现的需求" not in html
    assert '<html lang="zh-CN">' in html
    assert "<strong>1</strong><span>征集中的需求" in html


def test_nav_links_to_the_public_lists(client):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/demands"' in html and 'href="/programmes"' in html


def test_english_is_switchable_on_the_lists(client, make, orgs):
    make.demand(orgs["enterprise"], title="需求")
    client.post("/lang/en", data={"next": "/demands"})
    response = client.get("/demands")
    assert response.status_code == 200 and 'lang="en"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url, status",
    [
        # Beyond any id: not found, not an overflow.
        ("/demands/99999999999999999999", 404),
        ("/programmes/99999999999999999999", 404),
        # A NUL in a filter matches nothing; the list still renders.
        ("/demands?skill=%00", 200),
        ("/programmes?q=%E7%94%B5%00%E5%B7%A5&level=%00", 200),
        ("/skills/suggest?q=%00", 200),
    ],
)
def test_odd_urls_never_500(client, url, status):
    assert client.get(url).status_code == status
