"""Registration of an enterprise or an institution with its first admin."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao.auth.services import confirmation_token
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Organisation, User
from chanjiao.validators import credit_code_check_char

from .factories import credit_code


def valid_code(n: int = 424242) -> str:
    first17 = f"91110105{n:09d}"
    return first17 + credit_code_check_char(first17)


def form(**overrides) -> dict[str, str]:
    data = {
        "kind": "enterprise",
        "name": "北京望京数智科技有限公司",
        "credit_code": valid_code(),
        "district": "望京街道",
        "address": "朝阳区望京东路 8 号",
        "industry": "internet",
        "category": "",
        "description": "互联网平台研发与运营。",
        "contact_name": "刘经理",
        "contact_phone": "010-64701234",
        "user_name": "刘洋",
        "email": "Liu.Yang@Example.cn",
        "password": "Wangjing-2026!",
        "password_confirm": "Wangjing-2026!",
    }
    data.update(overrides)
    return data


def row_counts() -> tuple[int, int, int]:
    return (
        db.session.scalar(select(func.count(Organisation.id))),
        db.session.scalar(select(func.count(User.id))),
        db.session.scalar(select(func.count(AuditLog.id))),
    )


def test_register_page_is_chinese_with_labels(client):
    html = client.get("/register").get_data(as_text=True)
    assert "机构注册" in html and "统一社会信用代码" in html
    assert 'for="credit_code"' in html and 'name="csrf_token"' in html
    assert "望京街道" in html


def confirm(client, user: User):
    """Open the confirmation link the e-mail carries and press its button."""
    response = client.post(f"/confirm/{confirmation_token(user)}")
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    return response


def test_enterprise_registers_a_pending_admin_who_confirms_the_address(client):
    response = client.post("/register", data=form(credit_code=" " + valid_code().lower() + " "))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/email-sent/register")
    organisation = db.session.scalar(select(Organisation))
    assert organisation.status == "pending"
    assert organisation.credit_code == valid_code()  # normalised
    assert organisation.industry == "internet" and organisation.category is None
    user = db.session.scalar(select(User))
    assert user.role == "org_admin" and user.organisation_id == organisation.id
    assert user.email == "liu.yang@example.cn"
    assert user.password_hash.startswith("scrypt:")
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "organisation.register"))
    assert entry.actor_id == user.id and entry.object_id == organisation.id
    assert user.email_confirmed_at is None
    assert client.get("/dashboard/").status_code == 302  # not logged in until confirmed
    response = client.post("/login", data={"email": user.email, "password": "Wangjing-2026!"})
    assert response.status_code == 403 and "邮箱尚未确认" in response.get_data(as_text=True)
    assert confirm(client, user).headers["Location"].endswith("/dashboard/")
    db.session.refresh(user)
    assert user.email_confirmed_at is not None
    page = client.get("/dashboard/", follow_redirects=True).get_data(as_text=True)
    assert "等待协会审核" in page
    assert "协会工作人员将审核" in page  # the flash after confirming


def test_institution_registers_with_category_only(client):
    response = client.post(
        "/register",
        data=form(kind="institution", industry="finance", category="professional_technical"),
    )
    assert response.status_code == 302
    organisation = db.session.scalar(select(Organisation))
    assert organisation.kind == "institution"
    assert organisation.category == "professional_technical"
    assert organisation.industry is None  # the enterprise-only field is not kept


def test_markup_is_stored_as_typed_and_escaped(client):
    name = "<script>alert(1)</script>培训学校"
    client.post("/register", data=form(kind="institution", category="vocational_skill", name=name))
    assert db.session.scalar(select(Organisation.name)) == name
    confirm(client, db.session.scalar(select(User)))
    html = client.get("/dashboard/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


BAD_INPUTS = [
    pytest.param({"name": ""}, "请输入机构名称", id="missing-name"),
    pytest.param({"kind": ""}, "请选择机构类型", id="missing-kind"),
    pytest.param({"kind": "government"}, "请选择机构类型", id="unknown-kind"),
    pytest.param({"credit_code": ""}, "请输入统一社会信用代码", id="missing-code"),
    pytest.param({"credit_code": "91110105123"}, "应为 18 位", id="code-length"),
    pytest.param({"credit_code": "91110105OOOOOOOOOS"}, "无效字符", id="code-chars"),
    pytest.param({"credit_code": valid_code()[:17] + ("0" if valid_code()[17] != "0" else "1")},
                 "校验位不正确", id="code-check"),
    pytest.param({"district": ""}, "请选择所在街道/地区", id="missing-district"),
    pytest.param({"district": "海淀区中关村"}, "请从列表中选择朝阳区的街道", id="unknown-district"),
    pytest.param({"address": ""}, "请输入详细地址", id="missing-address"),
    pytest.param({"address": "路" * 201}, "地址不能超过 200 个字符", id="long-address"),
    pytest.param({"name": "名" * 101}, "机构名称不能超过 100 个字符", id="long-name"),
    pytest.param({"description": "长" * 5001}, "简介不能超过 5000 个字符", id="long-description"),
    pytest.param({"industry": ""}, "企业请选择所属行业", id="missing-industry"),
    pytest.param({"industry": "mining"}, "请从列表中选择所属行业", id="unknown-industry"),
    pytest.param({"kind": "institution", "category": ""}, "培训机构请选择机构类别", id="missing-category"),
    pytest.param({"kind": "institution", "category": "sports"}, "请从列表中选择机构类别",
                 id="unknown-category"),
    pytest.param({"contact_name": ""}, "请输入联系人姓名", id="missing-contact"),
    pytest.param({"contact_phone": ""}, "请输入联系电话", id="missing-phone"),
    pytest.param({"contact_phone": "12345"}, "请输入有效的手机号", id="bad-phone"),
    pytest.param({"contact_phone": "1" * 31}, "联系电话不能超过 30 个字符", id="long-phone"),
    pytest.param({"user_name": ""}, "请输入您的姓名", id="missing-user-name"),
    pytest.param({"user_name": "名" * 51}, "姓名不能超过 50 个字符", id="long-user-name"),
    pytest.param({"email": ""}, "请输入电子邮箱", id="missing-email"),
    pytest.param({"email": "not-an-email"}, "请输入有效的电子邮箱地址", id="bad-email"),
    pytest.param({"email": "a" * 250 + "@x.cn"}, "邮箱不能超过 254 个字符", id="long-email"),
    pytest.param({"password": "", "password_confirm": ""}, "请设置密码", id="missing-password"),
    pytest.param({"password": "short-1", "password_confirm": "short-1"}, "密码至少需要", id="short-password"),
    pytest.param({"password": "abcdefghijkl", "password_confirm": "abcdefghijkl"},
                 "密码需同时包含字母和数字或符号", id="weak-password"),
    pytest.param({"password_confirm": "Different-2026!"}, "两次输入的密码不一致", id="mismatch"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS)
def test_bad_input_is_named_next_to_the_field_and_writes_nothing(client, overrides, message):
    response = client.post("/register", data=form(**overrides))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'class="error"' in html
    assert row_counts() == (0, 0, 0)


def test_duplicate_credit_code_is_refused(client, make):
    existing = make.org()
    before = row_counts()
    response = client.post("/register", data=form(credit_code=existing.credit_code.lower()))
    assert response.status_code == 400
    assert "该统一社会信用代码已注册" in response.get_data(as_text=True)
    assert row_counts() == before


def test_a_registered_email_gets_the_same_answer_and_nothing_is_kept(client, make):
    existing = make.user(make.org())
    before = row_counts()
    response = client.post("/register", data=form(email=existing.email.upper()))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/email-sent/register")
    assert row_counts() == before  # no organisation, no second account
    assert db.session.scalar(select(Organisation).where(Organisation.credit_code == valid_code())) is None


@pytest.mark.parametrize(
    "data, status, organisations",
    [
        # A repeated field is read as its first value, as every form field is: a valid form.
        pytest.param({"district": ["望京街道", "建外街道"], "kind": ["enterprise", "institution"]},
                     302, 1, id="lists"),
        pytest.param({"kind": "1' OR '1'='1", "district": "0"}, 400, 0, id="injection"),
        pytest.param({}, 400, 0, id="empty"),
    ],
)
def test_wrong_types_get_a_clear_answer_not_a_500(client, data, status, organisations):
    payload = form()
    payload.update(data) if data else payload.clear()
    response = client.post("/register", data=payload)
    assert response.status_code == status
    assert row_counts()[0] == organisations


def test_register_without_csrf_token_is_refused(client):
    response = client.post("/register", data=form(), csrf=False)
    assert response.status_code == 400
    assert row_counts() == (0, 0, 0)


def test_logged_in_user_is_sent_to_the_dashboard(client, make, login):
    login(make.user(make.org()))
    assert client.get("/register").headers["Location"].endswith("/dashboard/")


def test_service_refuses_bad_values_without_the_form(app):
    from chanjiao.errors import DomainError
    from chanjiao.orgs.services import AccountData, OrganisationData, register_organisation

    data = OrganisationData(
        kind="enterprise", name="某公司", credit_code=credit_code(999), district="不存在",
        address="地址", industry="internet", category=None, description="",
        contact_name="张", contact_phone="13800138000",
    )
    with pytest.raises(DomainError) as caught:
        register_organisation(data, AccountData("张", "z@example.cn", "Good-pass-2026"))
    assert caught.value.field == "district"
    db.session.rollback()
    assert row_counts() == (0, 0, 0)
