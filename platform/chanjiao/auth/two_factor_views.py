"""Two-factor sign-in pages: the login's code step, enrolment, recovery codes, turning it off
(organisation users) and the admin's reset; and the hook that keeps staff who have not enrolled
on the enrolment page."""
from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..errors import DomainError, NotFound, PermissionDenied
from ..extensions import db
from ..forms import CleanForm
from ..models import User
from ..security import admin_required
from ..throttles import limiter, login_limit
from ..uow import unit_of_work
from . import services
from . import two_factor as tf
from .forms import add_domain_error

bp = Blueprint("two_factor", __name__)

PENDING = "two_factor_pending"
PASSED = "two_factor_passed"
# What a user who must enrol but has not may still reach.
OPEN_ENDPOINTS = {"static", "auth.logout", "public.set_language"}


class CodeForm(CleanForm):
    code = StringField(
        _l("验证码"),
        validators=[DataRequired(_l("请输入验证码。")), Length(max=40, message=_l("验证码过长。"))],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false", "autocapitalize": "off"},
    )


class ResetForm(CleanForm):
    email = EmailField(
        _l("用户的电子邮箱"),
        validators=[DataRequired(_l("请输入电子邮箱。")), Length(max=254, message=_l("邮箱过长。"))],
    )
    reason = TextAreaField(
        _l("重置原因"),
        validators=[
            DataRequired(_l("请填写重置原因。")),
            Length(max=tf.MAX_REASON, message=_l("原因不能超过 %(n)s 个字符。", n=tf.MAX_REASON)),
        ],
    )


def _no_store(response) -> Response:
    # Secrets and recovery codes are on these pages only: no cache may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _render(template: str, status: int = 200, **context) -> Response:
    return _no_store(make_response(render_template(template, **context), status))


def _me() -> User:
    # The user itself, not Flask-Login's proxy: services and the audit log read its type.
    return current_user._get_current_object()


def mark_passed(user: User) -> None:
    """Record in the session that it passed ``user``'s current second factor."""
    credential = tf.confirmed_credential(user)
    if credential is not None:
        session[PASSED] = tf.session_marker(credential)


# --- The login's code step ---------------------------------------------------------------------


def continue_login(user: User, next_target: str) -> Response:
    """After the right password: log in, or first ask for the second factor if the user has it."""
    from .views import start_session

    session.pop(PENDING, None)
    if tf.confirmed_credential(user) is None:
        start_session(user)
        if tf.is_required(user):
            flash(_("欢迎回来，%(name)s。请先设置两步验证，然后才能使用平台。", name=user.name), "warning")
            return redirect(url_for("two_factor.setup"))
        flash(_("欢迎回来，%(name)s。", name=user.name), "success")
        return redirect(next_target)
    with unit_of_work():
        nonce = tf.open_pending_login(user)
    session[PENDING] = {
        "user_id": user.id,
        "nonce": nonce,
        "fingerprint": services.session_fingerprint(user),
        "started": int(time.time()),
        "next": next_target,
    }
    return redirect(url_for("two_factor.verify"))


def _pending_user() -> tuple[User | None, dict | None, str | None]:
    """The user whose login waits for its code, the marker, or why it cannot go on."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None, None, None
    user = db.session.get(User, pending.get("user_id"))
    if user is None or not user.active:
        return None, None, _("登录已失效，请重新登录。")
    if int(time.time()) - int(pending.get("started", 0)) > tf.PENDING_LOGIN_SECONDS:
        return None, None, _("验证已超时（5 分钟），请重新登录。")
    if pending.get("fingerprint") != services.session_fingerprint(user) or not tf.pending_login_open(
        user, str(pending.get("nonce", ""))
    ):
        return None, None, _("登录已失效，请重新登录。")
    return user, pending, None


def _back_to_login(message: str | None) -> Response:
    session.pop(PENDING, None)
    if message:
        flash(message, "error")
    return redirect(url_for("auth.login"))


@bp.route("/login/verify", methods=["GET", "POST"])
# A code is a password too: guesses from one address count with its login attempts.
@limiter.shared_limit(login_limit, "login", methods=["POST"])
def verify():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    user, pending, problem = _pending_user()
    if user is None:
        return _back_to_login(problem)
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                check = tf.check_code(user, form.code.data)
                tf.close_pending_login(user)
        except DomainError as error:
            with unit_of_work():
                left = tf.count_failure(user, pending["nonce"])
            if left == 0:
                return _back_to_login(_("验证码错误次数过多，请重新登录。"))
            form.code.errors = [*form.code.errors, error.message,
                                _("还可以再试 %(n)s 次。", n=left)]
            status = 401
        else:
            from .views import start_session

            session.pop(PENDING, None)
            start_session(user)
            mark_passed(user)
            flash(_("欢迎回来，%(name)s。", name=user.name), "success")
            if check.kind == "recovery":
                flash(_("您使用了一个恢复码，还剩 %(n)s 个。恢复码不足时请重新生成。",
                        n=check.recovery_codes_left), "warning")
            return redirect(pending.get("next") or url_for("dashboard.index"))
    elif form.is_submitted():
        status = 400
    return _render("auth/two_factor_verify.html", status, form=form)


# --- Enrolment and management ------------------------------------------------------------------


def _setup_page(form: CodeForm | None = None, status: int = 200) -> Response:
    user = _me()
    credential = tf.confirmed_credential(user)
    if credential is not None:
        return _render(
            "auth/two_factor_setup.html", status,
            enabled=True, form=form or CodeForm(formdata=None),
            codes_left=tf.recovery_codes_left(user), required=tf.is_required(user),
        )
    with unit_of_work():
        credential = tf.begin_enrolment(user)
    uri = tf.provisioning_uri(user, credential)
    return _render(
        "auth/two_factor_setup.html", status,
        enabled=False, form=form or CodeForm(formdata=None), required=tf.is_required(user),
        secret=credential.secret, qr=tf.qr_svg(uri, _("用身份验证器扫描此二维码")),
    )


def _refused(form: CodeForm, error: DomainError) -> Response:
    """The setup page with the refusal; after 5 wrong codes in a row the session ends."""
    add_domain_error(form, error)
    if isinstance(error, tf.WrongCode):
        with unit_of_work():
            left = tf.count_wrong_code(_me())
        if left == 0:
            logout_user()
            session.pop(PASSED, None)
            flash(_("验证码错误次数过多，请重新登录。"), "error")
            return redirect(url_for("auth.login"))
        form.code.errors = [*form.code.errors, _("还可以再试 %(n)s 次。", n=left)]
    return _setup_page(form, 400)


@bp.get("/account/two-factor/setup")
@login_required
def setup():
    return _setup_page()


@bp.post("/account/two-factor/setup")
@login_required
def confirm():
    form = CodeForm()
    if not form.validate_on_submit():
        return _setup_page(form, 400)
    try:
        with unit_of_work():
            _credential, codes = tf.confirm_enrolment(_me(), form.code.data)
    except DomainError as error:
        add_domain_error(form, error)
        return _setup_page(form, 400)
    mark_passed(_me())
    flash(_("两步验证已开启。"), "success")
    return _render("auth/two_factor_codes.html", codes=codes)


@bp.post("/account/two-factor/recovery-codes")
@login_required
def regenerate():
    form = CodeForm()
    if not form.validate_on_submit():
        return _setup_page(form, 400)
    try:
        with unit_of_work():
            codes = tf.regenerate_recovery_codes(_me(), form.code.data)
    except DomainError as error:
        return _refused(form, error)
    flash(_("已生成新的恢复码，旧的恢复码已失效。"), "success")
    return _render("auth/two_factor_codes.html", codes=codes)


@bp.post("/account/two-factor/disable")
@login_required
def disable():
    form = CodeForm()
    if not form.validate_on_submit():
        return _setup_page(form, 400)
    try:
        with unit_of_work():
            tf.disable(_me(), form.code.data)
    except PermissionDenied:
        abort(403)
    except DomainError as error:
        return _refused(form, error)
    session.pop(PASSED, None)
    flash(_("两步验证已关闭。"), "success")
    return redirect(url_for("two_factor.setup"))


@bp.route("/account/two-factor/reset", methods=["GET", "POST"])
@admin_required
def admin_reset():
    form = ResetForm()
    if request.method == "GET":
        form.email.data = request.args.get("email", "")  # from the staff user list's link
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = tf.admin_reset(_me(), form.email.data, form.reason.data)
        except DomainError as error:
            add_domain_error(form, error)
            status = 404 if isinstance(error, NotFound) else 400
        else:
            flash(_("已重置 %(name)s（%(email)s）的两步验证。", name=user.name, email=user.email),
                  "success")
            return redirect(url_for("two_factor.admin_reset"))
    elif form.is_submitted():
        status = 400
    return _render("auth/two_factor_reset.html", status, form=form)


# --- Enforcement -------------------------------------------------------------------------------


@bp.before_app_request
def enforce_two_factor():
    # Runs after auth's end_stale_sessions (this blueprint is registered after auth's).
    if not current_user.is_authenticated or request.endpoint in OPEN_ENDPOINTS:
        return None
    credential = tf.confirmed_credential(current_user)
    passed = session.get(PASSED)
    if not (isinstance(passed, str) and passed.startswith(f"{current_user.id}:")):
        passed = None  # none, or left by another user who logged out in this browser
    expected = tf.session_marker(credential) if credential is not None else None
    if passed != expected:
        # The second factor changed since this session was opened: enabled elsewhere (this
        # session never passed it), reset by an admin, turned off or enrolled anew in another
        # browser. The session ends rather than carry on under rules it did not pass.
        logout_user()
        session.pop(PASSED, None)
        flash(_("两步验证设置已变更，请重新登录。"), "warning")
        return redirect(url_for("auth.login"))
    if credential is not None or not tf.is_required(current_user):
        return None
    if request.endpoint in ("two_factor.setup", "two_factor.confirm"):
        return None
    return redirect(url_for("two_factor.setup"))
