"""Visible text: zero-width characters pasted from Word are stripped; bidi controls and other
control or format characters are refused naming the field (forms and the API alike); a title
with no visible character is empty."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao.common import forbidden_characters, has_visible_character, visible_text
from chanjiao.errors import ValidationFailed
from chanjiao.extensions import db
from chanjiao.models import Demand, Programme

from .test_api import DEMAND, PROGRAMME
from .test_api_helpers import bearer, token_for

BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff"]


@pytest.mark.parametrize("control", BIDI_CONTROLS + ["\x07", "\x1b", "\u00ad", "\u2060", "\u061c"])
def test_every_control_and_format_character_is_named(app, control):
    with app.test_request_context(), pytest.raises(ValidationFailed) as refused:
        visible_text(f"证书{control}名称", "证书名称", "certificate_name")
    code = f"U+{ord(control):04X}"
    assert refused.value.field == "certificate_name"
    assert refused.value.message == f"证书名称含有不可见的控制字符（{code}），请删除后重新输入。"


def test_zero_width_characters_go_and_line_breaks_stay(app):
    with app.test_request_context():
        assert visible_text("\ufeff 一\u200b行\n二\t行\u200d ", "简介") == "一行\n二\t行"
    assert forbidden_characters("".join(ZERO_WIDTH)) == []


@pytest.mark.parametrize("blank", ["", "   ", "\u3000", "".join(ZERO_WIDTH), "\u3164", "\u0301"])
def test_text_that_shows_nothing_has_no_visible_character(blank):
    assert not has_visible_character(blank)


@pytest.mark.parametrize("text", ["a", "养", "1", "。", "😀"])
def test_text_that_shows_something_is_visible(text):
    assert has_visible_character(text)


def _programme_form(**overrides):
    return {
        "title": "养老护理员（四级）技能培训", "description": "生活照料与基础护理。",
        "modules": "老年人生活照料 40", "outcomes": "", "skills": "养老护理", "level": "L4",
        "certificate_kind": "none", "certificate_name": "", "total_hours": "120", "mode": "offline",
        "district": "双井街道", "location": "双井培训中心", "capacity": "40", "fee": "2600",
        "schedule": "每周六全天", **overrides,
    }


@pytest.fixture
def trainer(make, login):
    user = make.user(make.org("institution"))
    login(user)
    return user


def test_a_bidi_override_in_a_programme_title_is_refused_on_the_form(client, trainer):
    response = client.post("/my/programmes/new", data=_programme_form(title="护理\u202e培训"))
    assert response.status_code == 400
    assert "项目名称含有不可见的控制字符（U+202E）" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Programme)) == 0


def test_a_title_of_zero_width_characters_only_is_empty_on_the_form(client, trainer):
    response = client.post("/my/programmes/new", data=_programme_form(title="\u200b\u200c\ufeff"))
    assert response.status_code == 400
    assert "请填写项目名称。" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Programme)) == 0


def test_the_api_refuses_bidi_controls_naming_the_field(client, make):
    token = token_for(make.user(make.org("enterprise")))
    body = {**DEMAND, "location": "常营\u2067驿站\u2069"}
    response = client.post("/api/v1/demands", json=body, headers=bearer(token))
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert fields == {"location": "培训/工作地点含有不可见的控制字符（U+2067、U+2069），请删除后重新输入。"}
    assert db.session.scalar(select(func.count()).select_from(Demand)) == 0


def test_the_api_refuses_a_title_of_zero_width_characters(client, make):
    token = token_for(make.user(make.org("institution")))
    response = client.post(
        "/api/v1/programmes", json={**PROGRAMME, "title": "\u200b\ufeff"}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"title"}
    assert db.session.scalar(select(func.count()).select_from(Programme)) == 0


def test_the_api_strips_zero_width_characters(client, make):
    token = token_for(make.user(make.org("enterprise")))
    body = {**DEMAND, "title": "养老\u200b护理员\ufeff"}
    response = client.post("/api/v1/demands", json=body, headers=bearer(token))
    assert response.status_code == 201
    assert db.session.scalar(select(Demand.title)) == "养老护理员"
