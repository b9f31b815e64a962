"""The organisation dashboard: status banner, posting counts and the posting table."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest


def test_enterprise_sees_its_demands_and_counts(client, make, login):
    organisation = make.org("enterprise")
    login(make.user(organisation, role="org_member"))
    make.demand(organisation, status="open", title="叉车司机需求",
                updated_at=datetime(2026, 5, 2, 8, 30, tzinfo=UTC))
    make.demand(organisation, status="draft", title="仓储主管需求")
    make.demand(make.org(), status="open", title="别家企业的需求")
    make.programme(make.org("institution"), title="别家课程")
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "我们的技能需求" in html
    assert "叉车司机需求" in html and "仓储主管需求" in html
    assert "别家企业的需求" not in html and "别家课程" not in html
    assert "2026-05-02 16:30" in html  # shown in Beijing time
    assert "征集中" in html and "草稿" in html


def test_institution_sees_its_programmes(client, make, login):
    organisation = make.org("institution")
    login(make.user(organisation))
    make.programme(organisation, status="published", title="育婴员培训")
    make.demand(make.org(), title="企业需求不应出现")
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "我们的培训项目" in html and "育婴员培训" in html and "企业需求不应出现" not in html


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("pending", "", "等待协会审核"),
        ("rejected", "营业执照模糊", "营业执照模糊"),
        ("suspended", "发布不实信息", "发布不实信息"),
        ("approved", "", "您的机构可以发布信息"),
    ],
)
def test_status_banner_explains_and_gives_the_reason(client, make, login, status, reason, expected):
    organisation = make.org(status=status, status_reason=reason)
    login(make.user(organisation))
    html = client.get("/dashboard/").get_data(as_text=True)
    assert expected in html
    if status != "approved":
        assert "不能发布" in html


def test_reason_markup_is_escaped(client, make, login):
    organisation = make.org(status="rejected", status_reason="<script>x()</script>")
    login(make.user(organisation))
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "<script>x()</script>" not in html and "&lt;script&gt;" in html


def test_rows_link_to_edit_pages_only_when_they_exist(app, client, make, login):
    organisation = make.org()
    make.demand(organisation, title="电工需求")
    login(make.user(organisation))
    app.jinja_env.globals["endpoint_exists"] = lambda endpoint: False
    html = client.get("/dashboard/").get_data(as_text=True)
    table = html[html.index("<tbody>"):html.index("</tbody>")]
    assert "电工需求" in table and "<a " not in table and "href" not in table


def test_rows_link_when_edit_endpoint_exists(app, make, login, client):
    if "postings.demand_edit" not in app.view_functions:
        app.add_url_rule("/fake/demands/<int:demand_id>/edit", "postings.demand_edit", lambda demand_id: "")
    organisation = make.org()
    demand = make.demand(organisation, title="焊工需求")
    login(make.user(organisation))
    with app.test_request_context():
        from flask import url_for

        href = url_for("postings.demand_edit", demand_id=demand.id)
    html = client.get("/dashboard/").get_data(as_text=True)
    assert f'href="{href}"' in html


def test_empty_dashboard(client, make, login):
    login(make.user(make.org("institution")))
    assert "还没有发布任何信息" in client.get("/dashboard/").get_data(as_text=True)
