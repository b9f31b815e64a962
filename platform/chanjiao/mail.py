"""E-mail: written when the change is made, sent from the outbox after it commits.

:func:`send_later` renders the message now (templates under ``templates/mail/``, in the
current language: Chinese unless the visitor chose English) and adds an outbox message
``mail.send`` to the current unit of work, so an e-mail leaves only for a change that
committed, and a rolled-back unit sends nothing. The handler builds a flask-mailman
message and sends it through ``MAIL_BACKEND``:

- ``file`` (the default): one ``.eml`` file per message under ``MAIL_FILE_PATH``
  (``instance/mail``), so ``make run`` needs no mail server;
- ``smtp``: ``MAIL_SERVER``, ``MAIL_PORT``, ``MAIL_USE_TLS``/``MAIL_USE_SSL``, ``MAIL_USERNAME``,
  ``MAIL_PASSWORD``, ``MAIL_TIMEOUT``;
- ``locmem`` (tests) and any flask-mailman backend name.

An SMTP or network error raises, so the queue retries with back-off; a payload that cannot
be sent however often it is tried raises :class:`PermanentFailure` and fails at once. Sending is
at least once: a retry after a lost acknowledgement re-sends with the same Message-ID, which
mail clients use to drop the duplicate.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import smtplib
import tempfile
from email.header import Header
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from flask import current_app, has_request_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_mailman import BadHeaderError, EmailMultiAlternatives
from flask_mailman.backends.base import BaseEmailBackend

from . import choices, extensions
from .jobs import enqueue, handler
from .jobs.outbox import PermanentFailure
from .models import Invitation, OutboxMessage, PasswordResetToken, User
from .models._common import utcnow

KIND = "mail.send"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


# --- Writing -----------------------------------------------------------------------------------


def send_later(
    to: list[str] | str,
    subject: str,
    template: str,
    *,
    html_template: str | None = None,
    key: str | None = None,
    **context: Any,
) -> OutboxMessage | None:
    """Render ``templates/mail/<template>.txt`` (and optionally an HTML alternative) now and
    queue it for ``to`` in the current unit of work; it is sent after the commit.

    With ``key``, a message to the same key still waiting absorbs this one (a newer reset link
    replaces an older one that was not sent yet). Returns the outbox message, or None when it
    was absorbed.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients or not all(isinstance(a, str) and _EMAIL.match(a) for a in recipients):
        raise ValueError(f"not a list of e-mail addresses: {to!r}")
    locale = get_locale()
    context = {"chinese": locale is None or locale.language == "zh", **context}
    env = current_app.jinja_env
    payload = {
        "to": recipients,
        # A header is one line: collapse whatever a name brought in.
        "subject": " ".join(str(subject).split()),
        "body": env.get_template(f"mail/{template}.txt").render(context),
        "html": env.get_template(f"mail/{html_template}").render(context) if html_template else None,
        "template": template,
        # Makes the Message-ID (a hash of the payload) unique to this e-mail.
        "queued_at": utcnow().isoformat(),
    }
    return enqueue(KIND, payload, key=key)


def absolute_url(endpoint: str, **values: Any) -> str:
    """An absolute link for an e-mail: the one shown on screen during a request, else
    ``PUBLIC_BASE_URL`` and the path (a job or command has no request to read the host from)."""
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def send_invitation(invitation: Invitation, code: str, inviter: User) -> None:
    """E-mail the invitation link to the address it was made for (none: nothing to send)."""
    if not invitation.email:
        return
    organisation = invitation.organisation.name
    send_later(
        invitation.email,
        _("%(inviter)s 邀请您加入%(org)s · 产教融合对接平台", inviter=inviter.name, org=organisation),
        "invitation",
        link=absolute_url("auth.accept_invitation", code=code),
        inviter=inviter.name,
        organisation=organisation,
        role=choices.label(choices.ROLES, invitation.role),
        days=(invitation.expires_at - invitation.created_at).days,
    )


def send_password_reset(reset: PasswordResetToken, token: str, issued_by: User | None = None) -> None:
    """E-mail a password-reset link to the account holder; a newer link not yet sent replaces
    this one (the older link stops working when the newer is issued)."""
    user = reset.user
    hours = max(1, round((reset.expires_at - reset.created_at).total_seconds() / 3600))
    send_later(
        user.email,
        _("重置您的密码 · 产教融合对接平台"),
        "password_reset",
        key=f"mail.password_reset:{user.id}",
        link=absolute_url("auth.reset_password", token=token),
        name=user.name,
        email=user.email,
        hours=hours,
        issued_by=issued_by.name if issued_by is not None and issued_by.id != user.id else None,
    )


def send_registration_confirmation(user: User) -> None:
    """E-mail the link that confirms a self-registered address (a newer one replaces an older one
    not yet sent)."""
    from .auth.services import confirmation_token

    send_later(
        user.email,
        _("请确认您的邮箱 · 产教融合对接平台"),
        "registration_confirm",
        key=f"mail.registration:{user.id}",
        link=absolute_url("auth.confirm_email", token=confirmation_token(user)),
        name=user.name,
        email=user.email,
        organisation=user.organisation.name if user.organisation is not None else "",
        hours=current_app.config["EMAIL_CONFIRMATION_HOURS"],
    )


def send_registration_attempt(user: User) -> None:
    """Tell the holder of an address that someone tried to register it again: the page said
    only "check your e-mail", so this is where the truth is told, to the address's owner."""
    send_later(
        user.email,
        _("有人使用您的邮箱申请注册 · 产教融合对接平台"),
        "registration_exists",
        key=f"mail.registration:{user.id}",
        login=absolute_url("auth.login"),
        forgot=absolute_url("auth.forgot_password"),
        name=user.name,
        email=user.email,
    )


# --- Sending -----------------------------------------------------------------------------------


@handler(KIND)
def send(payload: dict[str, Any]) -> None:
    """Send one queued e-mail through the configured backend."""
    to, subject, body, html = (payload.get(k) for k in ("to", "subject", "body", "html"))
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and _EMAIL.match(a) for a in to):
        raise PermanentFailure(f"'to' is not a list of e-mail addresses: {to!r}")
    if not isinstance(subject, str) or not isinstance(body, str) or not isinstance(html, str | None):
        raise PermanentFailure("'subject' and 'body' must be text")
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    message = _Email(
        subject=subject,
        body=body,
        from_email=sender,
        to=to,
        headers={"Message-ID": message_id(payload, sender)},
    )
    if html:
        message.attach_alternative(html, "text/html")
    try:
        message.message()  # a bad header fails here, before any connection is opened
    except BadHeaderError as error:
        raise PermanentFailure(str(error)) from error
    # The context closes the SMTP connection on every path (flask-mailman's send_messages
    # leaves it open when sendmail raises).
    with connection() as backend:
        try:
            backend.send_messages([message])
        except smtplib.SMTPRecipientsRefused as error:
            # Every address refused for good (5xx): retrying cannot help; 4xx is worth a retry.
            if all(code >= 500 for code, _reason in error.recipients.values()):
                raise PermanentFailure(f"recipients refused: {error.recipients!r}") from error
            raise


class _Email(EmailMultiAlternatives):
    """flask-mailman pre-encodes a non-ASCII subject as a string, which the serialiser then
    folds onto a line of its own: readers decode it with a leading space. A Header that knows
    its name folds correctly."""

    def message(self):  # noqa: ANN201 - flask-mailman's signature
        msg = super().message()
        if not self.subject.isascii():
            del msg["Subject"]
            # Message.__setitem__: flask-mailman's override would encode it to a string again.
            Message.__setitem__(msg, "Subject", Header(self.subject, "utf-8", header_name="Subject"))
        return msg


def message_id(payload: dict[str, Any], sender: str) -> str:
    """A Message-ID that stays the same when the same message is retried: a hash of its
    payload (the handler is not told the outbox row's id)."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    domain = parseaddr(sender)[1].rpartition("@")[2] or "chanjiao.local"
    return f"<{digest[:32]}@{domain}>"


def connection() -> BaseEmailBackend:
    """A backend for ``MAIL_BACKEND``, read from the configuration each time (so a changed
    setting applies without a restart of the extension)."""
    config = current_app.config
    backend = config.get("MAIL_BACKEND") or "file"
    if backend == "file":
        return extensions.mail.get_connection(backend=EmlFileBackend, file_path=config["MAIL_FILE_PATH"])
    if backend == "smtp":
        return extensions.mail.get_connection(
            backend="smtp",
            host=config["MAIL_SERVER"],
            port=int(config["MAIL_PORT"]),
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            timeout=config.get("MAIL_TIMEOUT"),
        )
    return extensions.mail.get_connection(backend=backend)


class EmlFileBackend(BaseEmailBackend):
    """Writes each message to ``<file_path>/<date>-<Message-ID hash>.eml``, which any mail
    client opens (flask-mailman's own file backend appends messages to ``.log`` files). A
    retried message overwrites its own file."""

    def __init__(self, *args: Any, file_path: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.file_path = Path(file_path)

    def send_messages(self, email_messages: list) -> int:
        self.file_path.mkdir(parents=True, exist_ok=True)
        for email in email_messages:
            mime = email.message()
            name = hashlib.sha256(str(mime["Message-ID"]).encode()).hexdigest()[:16]
            target = self.file_path / f"{utcnow():%Y%m%d-%H%M%S}-{name}.eml"
            for old in self.file_path.glob(f"*-{name}.eml"):
                target = old
            fd, tmp = tempfile.mkstemp(dir=self.file_path, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                file.write(mime.as_bytes())
            os.replace(tmp, target)  # a reader never sees half a message
        return len(email_messages)
