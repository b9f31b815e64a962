"""Two-factor sign-in through the real login form, with codes from pyotp: enrolment, the code
step, replay, wrong codes, recovery codes, enforcement for staff, the admin's reset."""
from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.models import ApiToken, AuditLog, RecoveryCode, TwoFactorCredential

SECRET = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')
RECOVERY = re.compile(r"<li><code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code></li>")


def password_step(client, user, password="Chanjiao-test-2026"):
    return client.post("/login", data={"email": user.email, "password": password})


def code_after(secret: str, seconds: float) -> str:
    """The code the authenticator shows ``seconds`` from now (the next step is still accepted:
    authenticator clocks drift)."""
    return pyotp.TOTP(secret).at(time.time() + seconds)


def wrong_code(secret: str) -> str:
    accepted = {code_after(secret, d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in accepted)


def credential(user) -> TwoFactorCredential | None:
    db.session.expire_all()
    return db.session.scalar(select(TwoFactorCredential).where(TwoFactorCredential.user_id == user.id))


def secret_of(user) -> str:
    return credential(user).secret


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def logged_in_as_staff(client) -> bool:
    return client.get("/staff/").status_code == 200


def enrol(client) -> tuple[str, list[str]]:
    """Enrol the logged-in user through the setup page; their secret and recovery codes."""
    page = client.get("/account/two-factor/setup").get_data(as_text=True)
    secret = SECRET.search(page).group(1)
    response = client.post("/account/two-factor/setup", data={"code": code_after(secret, 0)})
    assert response.status_code == 200, response.get_data(as_text=True)[-2000:]
    return secret, RECOVERY.findall(response.get_data(as_text=True))


def test_staff_without_enrolment_are_kept_on_the_setup_page_until_they_enrol(client, make):
    staff = make.user(role="staff", two_factor=False)
    response = password_step(client, staff)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor/setup")
    for path in ("/staff/", "/dashboard/", "/staff/users", "/account/tokens/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].endswith("/account/two-factor/setup"), path

    response = client.get("/account/two-factor/setup")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert '<svg' in page and 'class="qr-code"' in page
    assert "<script" not in page and "style=" not in page
    secret = SECRET.search(page).group(1)
    assert secret == secret_of(staff)
    # Reloading shows the same unconfirmed secret: the authenticator may already hold it.
    assert SECRET.search(client.get("/account/two-factor/setup").get_data(as_text=True)).group(1) == secret

    response = client.post("/account/two-factor/setup", data={"code": wrong_code(secret)})
    assert response.status_code == 400 and "验证码不正确或已过期" in response.get_data(as_text=True)
    assert credential(staff).confirmed_at is None and not logged_in_as_staff(client)

    response = client.post("/account/two-factor/setup", data={"code": code_after(secret, 0)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    codes = RECOVERY.findall(page)
    assert len(set(codes)) == 10
    stored = set(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == staff.id)))
    assert len(stored) == 10 and not any(code in h or code.replace("-", "") in h for code in codes for h in stored)
    assert credential(staff).confirmed_at is not None
    assert actions() == ["two_factor.enrol"]
    assert logged_in_as_staff(client)
    # Once confirmed, the secret is never shown again.
    page = client.get("/account/two-factor/setup").get_data(as_text=True)
    assert secret not in page and "两步验证已开启" in page

    client.post("/logout")
    response = password_step(client, staff)
    assert response.headers["Location"].endswith("/login/verify")
    assert not logged_in_as_staff(client)  # the password alone opens nothing
    response = client.post("/login/verify", data={"code": code_after(secret, 30)})
    assert response.status_code == 302 and logged_in_as_staff(client)


def test_login_with_a_code_goes_to_next_and_the_same_code_is_refused_a_second_time(client, make):
    staff = make.user(role="staff")
    secret = secret_of(staff)
    response = client.post("/login?next=/staff/users", data={"email": staff.email, "password": make.DEFAULT_PASSWORD})
    assert response.headers["Location"].endswith("/login/verify")
    page = client.get("/login/verify")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    code = code_after(secret, 0)
    response = client.post("/login/verify", data={"code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/users")
    assert logged_in_as_staff(client)

    client.post("/logout")
    password_step(client, staff)
    response = client.post("/login/verify", data={"code": code})
    assert response.status_code == 401
    assert "该验证码已经使用过" in response.get_data(as_text=True)
    assert not logged_in_as_staff(client)


def test_five_wrong_codes_end_the_pending_login_even_with_an_older_cookie(client, make):
    staff = make.user(role="staff")
    secret = secret_of(staff)
    password_step(client, staff)
    fresh_cookie = client.get_cookie("session", domain="chanjiao.test").value
    for attempt in range(1, 5):
        response = client.post("/login/verify", data={"code": wrong_code(secret)})
        assert response.status_code == 401
        assert f"还可以再试 {5 - attempt} 次" in response.get_data(as_text=True)
    response = client.post("/login/verify", data={"code": wrong_code(secret)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert "验证码错误次数过多" in client.get("/login").get_data(as_text=True)
    # The right code no longer helps, not even from the cookie the password step set.
    client.set_cookie("session", fresh_cookie, domain="chanjiao.test")
    response = client.post("/login/verify", data={"code": code_after(secret, 0)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert not logged_in_as_staff(client)
    assert credential(staff).last_used_timestep is None


def test_a_pending_login_expires_after_five_minutes(client, make):
    staff = make.user(role="staff")
    password_step(client, staff)
    with client.session_transaction() as sess:
        pending = sess["two_factor_pending"]
        sess["two_factor_pending"] = {**pending, "started": pending["started"] - 5 * 60 - 1}
    response = client.post("/login/verify", data={"code": code_after(secret_of(staff), 0)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert "验证已超时" in client.get("/login").get_data(as_text=True)
    assert not logged_in_as_staff(client)


def test_a_recovery_code_works_once_and_its_use_is_audited(client, make):
    staff = make.user(role="staff", two_factor=False)
    password_step(client, staff)
    _secret, codes = enrol(client)
    client.post("/logout")

    password_step(client, staff)
    response = client.post("/login/verify", data={"code": codes[0].upper().replace("-", " ")})
    assert response.status_code == 302 and logged_in_as_staff(client)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "two_factor.recovery_code_used"))
    assert entry.actor_id == staff.id and entry.details == {"codes_left": 9}
    client.post("/logout")

    password_step(client, staff)
    response = client.post("/login/verify", data={"code": codes[0]})
    assert response.status_code == 401 and "恢复码不正确或已使用" in response.get_data(as_text=True)
    assert not logged_in_as_staff(client)


def test_a_recovery_code_login_warns_how_many_are_left(client, make):
    staff = make.user(role="staff", two_factor=False)
    password_step(client, staff)
    _secret, codes = enrol(client)
    client.post("/logout")
    password_step(client, staff)
    response = client.post("/login/verify", data={"code": codes[3]}, follow_redirects=True)
    assert "您使用了一个恢复码，还剩 9 个" in response.get_data(as_text=True)


def test_regenerating_recovery_codes_needs_a_current_code_and_voids_the_old_ones(client, make):
    staff = make.user(role="staff", two_factor=False)
    password_step(client, staff)
    secret, old_codes = enrol(client)
    response = client.post("/account/two-factor/recovery-codes", data={"code": wrong_code(secret)})
    assert response.status_code == 400
    response = client.post("/account/two-factor/recovery-codes", data={"code": code_after(secret, 30)})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    new_codes = RECOVERY.findall(response.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    client.post("/logout")
    password_step(client, staff)
    assert client.post("/login/verify", data={"code": old_codes[0]}).status_code == 401
    assert client.post("/login/verify", data={"code": new_codes[0]}).status_code == 302
    assert "two_factor.recovery_codes_regenerated" in actions()


def test_organisation_users_may_turn_it_on_and_off_staff_may_not_turn_it_off(client, make, app):
    member = make.user(make.org())
    response = password_step(client, member)
    assert response.headers["Location"].endswith("/dashboard/")
    assert client.get("/dashboard/").status_code == 200  # no enrolment needed
    secret, codes = enrol(client)  # spends the code of this 30-second step
    client.post("/logout")
    assert password_step(client, member).headers["Location"].endswith("/login/verify")
    assert client.post("/login/verify", data={"code": codes[0]}).status_code == 302

    response = client.post("/account/two-factor/disable", data={"code": wrong_code(secret)})
    assert response.status_code == 400 and credential(member).confirmed_at is not None
    response = client.post("/account/two-factor/disable", data={"code": code_after(secret, 30)})
    assert response.status_code == 302
    assert credential(member) is None
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert actions() == ["two_factor.enrol", "two_factor.recovery_code_used", "two_factor.disable"]
    client.post("/logout")
    assert password_step(client, member).headers["Location"].endswith("/dashboard/")

    client.post("/logout")
    staff = make.user(role="staff")
    app.test_client_class = type(client)
    other = app.test_client()
    other.post("/login", data={"email": staff.email, "password": make.DEFAULT_PASSWORD})
    assert other.post("/login/verify", data={"code": code_after(secret_of(staff), 0)}).status_code == 302
    assert "/account/two-factor/disable" not in other.get("/account/two-factor/setup").get_data(as_text=True)
    response = other.post("/account/two-factor/disable", data={"code": code_after(secret_of(staff), 30)})
    assert response.status_code == 403
    assert credential(staff).confirmed_at is not None


def test_enabling_it_ends_the_users_other_sessions(app, client, make):
    member = make.user(make.org())
    app.test_client_class = type(client)
    other = app.test_client()
    for c in (client, other):
        assert password_step(c, member).status_code == 302
    enrol(client)
    assert client.get("/dashboard/").status_code == 200
    response = other.get("/dashboard/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_admin_reset_is_audited_with_its_reason_and_staff_must_enrol_again(app, client, make, login):
    admin = make.user(role="admin")
    staff = make.user(role="staff")
    app.test_client_class = type(client)
    staff_browser = app.test_client()
    password_step(staff_browser, staff)
    assert staff_browser.post("/login/verify", data={"code": code_after(secret_of(staff), 0)}).status_code == 302
    login(admin)
    page = client.get("/account/two-factor/reset")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    response = client.post("/account/two-factor/reset", data={"email": staff.email, "reason": "  "})
    assert response.status_code == 400 and credential(staff) is not None
    response = client.post("/account/two-factor/reset", data={"email": "nobody@example.cn", "reason": "手机丢失"})
    assert response.status_code == 404 and "没有使用该邮箱的用户" in response.get_data(as_text=True)
    response = client.post("/account/two-factor/reset", data={"email": admin.email, "reason": "手机丢失"})
    assert response.status_code == 400 and credential(admin) is not None
    assert client.post("/account/two-factor/reset", data={"email": staff.email, "reason": "手机丢失"},
                       csrf=False).status_code == 400
    assert credential(staff) is not None and actions() == []

    response = client.post("/account/two-factor/reset",
                           data={"email": staff.email.upper(), "reason": "手机丢失，已电话核实本人"})
    assert response.status_code == 302
    assert credential(staff) is None
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "two_factor.reset"))
    assert (entry.actor_id, entry.object_id, entry.reason) == (admin.id, staff.id, "手机丢失，已电话核实本人")
    assert entry.created_at is not None
    # The session that passed the old second factor ends.
    response = staff_browser.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")

    other = app.test_client()
    response = password_step(other, staff)
    assert response.headers["Location"].endswith("/account/two-factor/setup")
    assert other.get("/staff/").status_code == 302
    # Plain staff may not reset anyone's second factor.
    assert other.get("/account/two-factor/reset").status_code == 302  # still restricted
    enrol(other)
    assert other.get("/account/two-factor/reset").status_code == 403


def test_api_tokens_are_created_only_by_sessions_that_passed_the_second_factor(app, client, make):
    staff = make.user(role="staff", two_factor=False)
    password_step(client, staff)
    response = client.post("/account/tokens/", data={"name": "脚本"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor/setup")

    member = make.user(make.org(), role="org_member")
    app.test_client_class = type(client)
    other = app.test_client()
    password_step(other, member)
    secret, _codes = enrol(other)
    other.post("/logout")
    password_step(other, member)  # the password step alone
    response = other.post("/account/tokens/", data={"name": "脚本"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0

    assert other.post("/login/verify", data={"code": code_after(secret, 30)}).status_code == 302
    assert other.post("/account/tokens/", data={"name": "脚本"}).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 1


def test_verify_without_a_pending_login_goes_back_to_login(client, make):
    response = client.get("/login/verify")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    staff = make.user(role="staff")
    password_step(client, staff)
    response = client.post("/login/verify", data={"code": "abc\x00"})
    assert response.status_code == 400
    assert credential(staff).wrong_codes == 0


def test_a_user_without_it_logs_in_where_a_staff_member_logged_out(client, make, login):
    staff = make.user(role="staff")
    member = make.user(make.org())
    login(staff)
    assert logged_in_as_staff(client)
    client.post("/logout")
    password_step(client, member)
    assert client.get("/dashboard/").status_code == 200


def test_five_wrong_codes_on_the_setup_page_end_the_session(client, make, login):
    staff = make.user(role="staff")
    login(staff)
    secret = secret_of(staff)
    for attempt in range(1, 5):
        response = client.post("/account/two-factor/recovery-codes", data={"code": wrong_code(secret)})
        assert response.status_code == 400
        assert f"还可以再试 {5 - attempt} 次" in response.get_data(as_text=True)
    response = client.post("/account/two-factor/recovery-codes", data={"code": wrong_code(secret)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert not logged_in_as_staff(client)
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert actions() == ["two_factor.too_many_wrong_codes"]


def test_the_staff_user_list_links_an_admin_to_each_accounts_reset(client, make, login):
    admin = make.user(role="admin")
    staff = make.user(role="staff", name="钱工作")
    login(admin)
    html = client.get("/staff/users").get_data(as_text=True)
    link = f"/account/two-factor/reset?email={staff.email}"
    assert f'href="{link}"' in html
    assert f"two-factor/reset?email={admin.email}" not in html  # not oneself
    page = client.get(link).get_data(as_text=True)
    assert f'value="{staff.email}"' in page


def test_plain_staff_see_no_reset_link(client, make, login):
    make.user(role="staff")
    login(make.user(role="staff"))
    assert "two-factor/reset" not in client.get("/staff/users").get_data(as_text=True)
