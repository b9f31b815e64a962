"""E-mail leaves only from the outbox, after the change commits: a real SMTP server (aiosmtpd) on
a free local port receives what the platform sends."""
from __future__ import annotations

import email
import re
import socket
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from chanjiao import jobs, mail
from chanjiao.extensions import db
from chanjiao.jobs.outbox import enqueue
from chanjiao.models import OutboxMessage
from chanjiao.models._common import utcnow
from chanjiao.uow import unit_of_work

INVITEE = "zhou@example.cn"


class Collector:
    """aiosmtpd handler: keeps every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class SMTPServer:
    """A real SMTP server on ``port`` that can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.collector = Collector()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller.loop.close()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.original_content, policy=policy.default) for e in self.collector.envelopes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(app):
    """The app sends through SMTP to a local server that is not started yet."""
    server = SMTPServer(free_port())
    app.config.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_TIMEOUT=5)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def org_admin(make, login):
    admin = make.user(make.org(name="朝阳精工机械有限公司"), role="org_admin", name="钱管理")
    login(admin)
    return admin


def invite(client, address: str = INVITEE) -> str:
    """Invite ``address`` through the members page; return the link shown on screen."""
    response = client.post("/org/invitations", data={"role": "org_member", "email": address})
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    match = re.search(r'value="(https?://[^"]+/invite/[A-Za-z0-9_-]+)"', response.get_data(as_text=True))
    assert match, "the link is still shown on screen"
    return match.group(1)


def mail_messages() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mail.send").order_by(OutboxMessage.id)))


def test_invitation_is_mailed_once_after_the_commit(app, client, smtp, org_admin):
    smtp.start()
    link = invite(client)
    jobs.run_pending()  # a no-op when the commit ran it already (JOBS_MODE eager)

    assert len(smtp.collector.envelopes) == 1
    envelope = smtp.collector.envelopes[0]
    assert envelope.rcpt_tos == [INVITEE]
    message = smtp.messages[0]
    assert message["To"] == INVITEE
    assert message["Subject"] == "钱管理 邀请您加入朝阳精工机械有限公司 · 产教融合对接平台"
    # On the wire the header is RFC 2047-encoded ASCII, not raw UTF-8.
    raw_subject = re.search(rb"^Subject: (.*(?:\r?\n[ \t].*)*)", envelope.original_content, re.M).group(1)
    assert raw_subject.isascii() and b"=?utf-8?" in raw_subject.lower()
    body = message.get_body(("plain",)).get_content()
    assert link in body and "朝阳精工机械有限公司" in body and "Chanjiao" in body
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@chanjiao.local>")
    assert [m.state for m in mail_messages()] == ["done"]

    jobs.run_pending()
    assert len(smtp.collector.envelopes) == 1, "a done message is never sent again"


def test_invitation_without_address_sends_nothing(client, smtp, org_admin):
    smtp.start()
    response = client.post("/org/invitations", data={"role": "org_member"})
    assert response.status_code == 200
    jobs.run_pending()
    assert mail_messages() == [] and smtp.collector.envelopes == []


def test_rolled_back_unit_sends_nothing(app, smtp):
    smtp.start()
    with pytest.raises(RuntimeError), unit_of_work():
        mail.send_later(INVITEE, "不应发出", "password_reset", name="周", email=INVITEE, hours=24,
                        link="http://x/reset/t", issued_by=None)
        db.session.flush()
        raise RuntimeError("the change failed")
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0
    assert jobs.run_pending() == 0
    assert smtp.collector.envelopes == []


def test_smtp_down_keeps_the_message_pending_then_delivers_once(app, client, smtp, org_admin):
    link = invite(client)  # the server is not running: the invitation still succeeds
    jobs.run_pending()
    [message] = mail_messages()
    assert (message.state, message.attempts) == ("pending", 1)
    assert message.last_error and message.available_at > utcnow()

    smtp.start()
    with unit_of_work():
        message.available_at = utcnow()
    jobs.run_pending()
    assert len(smtp.collector.envelopes) == 1 and link in smtp.messages[0].get_body(("plain",)).get_content()
    db.session.refresh(message)
    assert (message.state, message.attempts) == ("done", 2)
    jobs.run_pending()
    assert len(smtp.collector.envelopes) == 1


def test_file_backend_writes_one_eml(app, tmp_path):
    assert Path(app.config["MAIL_FILE_PATH"]) == Path(app.instance_path) / "mail"
    folder = tmp_path / "mail"  # not the repository's instance folder
    app.config.update(MAIL_BACKEND="file", MAIL_FILE_PATH=str(folder))
    with unit_of_work():
        queued = mail.send_later([INVITEE], "重置您的密码 · 产教融合对接平台", "password_reset", name="周",
                                 email=INVITEE, hours=24, link="http://x/reset/t", issued_by=None)
    jobs.run_pending()
    [path] = folder.glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "重置您的密码 · 产教融合对接平台" and parsed["To"] == INVITEE
    assert "http://x/reset/t" in parsed.get_body(("plain",)).get_content()
    # A retry of the same message (lost acknowledgement) rewrites its file, not a second one.
    mail.send(queued.payload)
    assert list(folder.glob("*.eml")) == [path]


@pytest.mark.parametrize("payload", [
    {"subject": "s", "body": "b"},
    {"to": INVITEE, "subject": "s", "body": "b"},
    {"to": [INVITEE, 7], "subject": "s", "body": "b"},
    {"to": [], "subject": "s", "body": "b"},
    {"to": [INVITEE], "subject": None, "body": "b"},
    {"to": [INVITEE], "subject": "two\nlines", "body": "b"},
])
def test_malformed_payload_fails_at_once_without_blocking_others(app, smtp, payload):
    smtp.start()
    with unit_of_work():
        bad = enqueue("mail.send", payload)
        mail.send_later(INVITEE, "好的邮件", "password_reset", name="周", email=INVITEE, hours=24,
                        link="http://x/reset/t", issued_by=None)
    jobs.run_pending()
    bad, good = mail_messages()
    assert (bad.state, bad.attempts) == ("failed", 1) and "PermanentFailure" in bad.last_error
    assert good.state == "done"
    assert [m["Subject"] for m in smtp.messages] == ["好的邮件"]


def test_password_reset_issued_by_an_org_admin_is_mailed(app, client, smtp, make, org_admin):
    smtp.start()
    member = make.user(org_admin.organisation, role="org_member", name="孙成员", email="sun@example.cn")
    response = client.post(f"/org/members/{member.id}/reset")
    assert response.status_code == 200
    link = re.search(r'value="(https?://[^"]+/reset/[A-Za-z0-9_-]+)"', response.get_data(as_text=True)).group(1)
    jobs.run_pending()
    [message] = smtp.messages
    assert message["To"] == "sun@example.cn" and message["Subject"] == "重置您的密码 · 产教融合对接平台"
    body = message.get_body(("plain",)).get_content()
    assert link in body and "钱管理" in body


def test_newer_reset_link_replaces_an_unsent_one(app, make):
    app.config["JOBS_MODE"] = "manual"
    organisation = make.org()
    admin = make.user(organisation, role="org_admin")
    member = make.user(organisation, role="org_member")
    from chanjiao.auth.services import issue_password_reset

    with unit_of_work():
        issue_password_reset(admin, member)
    with unit_of_work():
        _reset, token = issue_password_reset(admin, member)
    [message] = mail_messages()
    assert token in message.payload["body"], "only the link that still works goes out"


def test_link_outside_a_request_uses_public_base_url(app):
    app.config["PUBLIC_BASE_URL"] = "https://chanjiao.example.cn/"
    assert mail.absolute_url("auth.reset_password", token="abc") == "https://chanjiao.example.cn/reset/abc"


def test_mail_written_in_english_when_the_visitor_chose_it(app, client, smtp, org_admin):
    smtp.start()
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    invite(client)
    jobs.run_pending()
    [message] = smtp.messages
    assert message["Subject"] == "钱管理 invites you to join 朝阳精工机械有限公司 on the Industry–education matching platform"
    body = message.get_body(("plain",)).get_content()
    assert "邀请您" not in body and "invited you" in body


def test_retry_back_off_is_recorded_on_the_message(app, smtp):
    # Complement to the down-server test: the error names the connection problem.
    with unit_of_work():
        mail.send_later(INVITEE, "s", "password_reset", name="周", email=INVITEE, hours=1,
                        link="http://x/reset/t", issued_by=None)
    jobs.run_pending()
    [message] = mail_messages()
    assert "Connection" in message.last_error or "refused" in message.last_error.lower()
    assert message.available_at - utcnow() <= timedelta(seconds=6)
