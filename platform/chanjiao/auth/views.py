"""Login, logout, registration, accepting invitations and one-time password resets."""
from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..errors import DomainError, InvalidTransition, NotFound, PermissionDenied
from ..models import User
from ..orgs import services as orgs
from ..throttles import anonymous_form_limit, limiter, login_limit
from ..uow import unit_of_work
from ..views_common import safe_next
from . import services
from .forms import (
    ConfirmForm,
    ForgotPasswordForm,
    InvitationAcceptForm,
    LoginForm,
    NewPasswordForm,
    RegistrationForm,
    add_domain_error,
)

bp = Blueprint("auth", __name__)

SESSION_FINGERPRINT = "auth_fp"


def start_session(user) -> None:
    """Log ``user`` in and remember which password the session was opened with."""
    login_user(user)
    session[SESSION_FINGERPRINT] = services.session_fingerprint(user)


@bp.before_app_request
def end_stale_sessions() -> None:
    # Logout, a new password or role, deactivation and suspension change the fingerprint (see
    # services.session_fingerprint): every copy of an older session cookie stops here, on
    # whichever device it was copied to.
    if "_user_id" not in session or not current_user.is_authenticated:
        return
    if session.get(SESSION_FINGERPRINT) != services.session_fingerprint(current_user):
        logout_user()
        session.pop(SESSION_FINGERPRINT, None)


@bp.route("/login", methods=["GET", "POST"])
# One count per address for passwords and second-factor codes (auth.two_factor_views).
@limiter.shared_limit(login_limit, "login", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = _attempt_login(form.email.data, form.password.data)
        if isinstance(user, DomainError):
            form.form_errors.append(user.message)
            if isinstance(user, services.LoginThrottled):
                page = render_template("auth/login.html", form=form)
                return page, 429, {"Retry-After": str(user.retry_after)}
            status = 403 if isinstance(user, PermissionDenied | services.EmailNotConfirmed) else 401
        else:
            # The second factor, when the user has one, comes before the session starts.
            from .two_factor_views import continue_login

            return continue_login(user, safe_next(request.args.get("next"), url_for("dashboard.index")))
    elif form.is_submitted():
        status = 400
    return render_template("auth/login.html", form=form), status


def _attempt_login(email: str, password: str) -> User | DomainError:
    """The user these credentials open, or the refusal; either way one unit of work that
    commits. A refused login is still a change to keep (the failure count that throttles
    guessing), so, unlike elsewhere, the refusal is caught inside the unit."""
    with unit_of_work():
        try:
            return services.authenticate(email, password, request.remote_addr)
        except DomainError as error:
            return error


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        with unit_of_work():
            services.end_sessions(current_user)
    logout_user()
    flash(_("您已安全退出。"), "success")
    return redirect(url_for("public.home"))


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(anonymous_form_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = RegistrationForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                orgs.apply_for_registration(
                    orgs.OrganisationData(
                        kind=form.kind.data,
                        name=form.name.data,
                        credit_code=form.credit_code.data,
                        district=form.district.data,
                        address=form.address.data,
                        industry=form.industry.data or None,
                        category=form.category.data or None,
                        description=form.description.data or "",
                        contact_name=form.contact_name.data,
                        contact_phone=form.contact_phone.data,
                    ),
                    orgs.AccountData(form.user_name.data, form.email.data, form.password.data),
                )
        except DomainError as error:
            add_domain_error(form, error)
            status = 400
        else:
            # The same answer whether or not the address has an account; the e-mail tells.
            return redirect(url_for("auth.email_sent", reason="register"))
    elif form.is_submitted():
        status = 400
    return render_template("auth/register.html", form=form), status


@bp.get("/email-sent/<any(register, forgot):reason>")
def email_sent(reason: str):
    return render_template("auth/email_sent.html", reason=reason)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limiter.limit(anonymous_form_limit, methods=["POST"])
def confirm_email(token: str):
    try:
        user = services.find_unconfirmed(token)
    except DomainError as error:
        status = 404 if isinstance(error, NotFound) else 410
        page = render_template("auth/link_refused.html", message=error.message)
        return _no_store(current_app.make_response((page, status)))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = services.confirm_email(token)
        except DomainError as error:
            page = render_template("auth/link_refused.html", message=error.message)
            return _no_store(current_app.make_response((page, 410)))
        if current_user.is_authenticated:
            logout_user()
        flash(_("邮箱已确认。协会工作人员将审核您的机构信息，审核通过后即可发布信息。"), "success")
        from .two_factor_views import continue_login

        return continue_login(user, url_for("dashboard.index"))
    page = render_template("auth/confirm.html", form=form, user=user)
    return _no_store(current_app.make_response((page, 400 if form.is_submitted() else 200)))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(anonymous_form_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    status = 200
    if form.validate_on_submit():
        with unit_of_work():
            services.request_password_reset(form.email.data)
        return redirect(url_for("auth.email_sent", reason="forgot"))
    if form.is_submitted():
        status = 400
    return render_template("auth/forgot.html", form=form), status


def _no_store(response):
    # One-time links must not linger in shared or back-button caches.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/invite/<code>", methods=["GET", "POST"])
@limiter.limit(anonymous_form_limit, methods=["POST"])
def accept_invitation(code: str):
    try:
        invitation = orgs.find_invitation(code)
    except DomainError as error:
        status = 404 if isinstance(error, NotFound) else 410
        page = render_template("auth/link_refused.html", message=error.message)
        return _no_store(current_app.make_response((page, status)))
    if current_user.is_authenticated:
        page = render_template("auth/link_refused.html", message=_(
            "您已以 %(email)s 登录。请先退出，再用此邀请链接创建新账号。", email=current_user.email
        ))
        return _no_store(current_app.make_response((page, 409)))
    form = InvitationAcceptForm()
    if request.method == "GET" and invitation.email:
        form.email.data = invitation.email
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = orgs.accept_invitation(
                    code, orgs.AccountData(form.user_name.data, form.email.data, form.password.data)
                )
        except DomainError as error:
            add_domain_error(form, error)
            # Spent by someone else meanwhile: the link is gone, as on a fresh visit.
            status = 410 if isinstance(error, InvalidTransition) else 400
        else:
            start_session(user)
            flash(_("账号已创建，欢迎加入%(org)s。", org=user.organisation.name), "success")
            return redirect(url_for("dashboard.index"))
    elif form.is_submitted():
        status = 400
    page = render_template("auth/invite.html", form=form, invitation=invitation)
    return _no_store(current_app.make_response((page, status)))


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(anonymous_form_limit, methods=["POST"])
def reset_password(token: str):
    try:
        reset = services.find_password_reset(token)
    except DomainError as error:
        status = 404 if isinstance(error, NotFound) else 410
        page = render_template("auth/link_refused.html", message=error.message)
        return _no_store(current_app.make_response((page, status)))
    form = NewPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = services.reset_password(token, form.password.data)
        except DomainError as error:
            add_domain_error(form, error)
            # Spent by someone else meanwhile: the link is gone, as on a fresh visit.
            status = 410 if isinstance(error, InvalidTransition) else 400
        else:
            if current_user.is_authenticated and current_user.id == user.id:
                logout_user()  # log in again with the new password
            flash(_("密码已重置，请使用新密码登录。"), "success")
            return redirect(url_for("auth.login"))
    elif form.is_submitted():
        status = 400
    page = render_template("auth/reset.html", form=form, user=reset.user)
    return _no_store(current_app.make_response((page, status)))
