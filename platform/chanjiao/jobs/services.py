"""What staff see of the queue: failing and failed messages, the periodic jobs, and a retry."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from ..common import change_if
from ..errors import InvalidTransition, NotFound, PermissionDenied
from ..extensions import db
from ..models import OutboxMessage, ScheduledRun, User
from ..models._common import utcnow
from ..models.audit import record
from . import outbox, registry

SHOWN = 200


@dataclass
class QueueOverview:
    counts: dict[str, int]
    troubled: list[OutboxMessage]  # failed, or pending after at least one failure
    periodic: list[tuple[registry.Periodic, ScheduledRun | None]]
    mode: str


def _require_staff(actor: User) -> None:
    if actor.role not in ("staff", "admin"):
        raise PermissionDenied(_("您没有执行此操作的权限。"))


def overview(actor: User) -> QueueOverview:
    _require_staff(actor)
    registry.load_all()
    troubled = list(db.session.scalars(
        select(OutboxMessage)
        .where((OutboxMessage.state == "failed") | ((OutboxMessage.state == "pending") & (OutboxMessage.attempts > 0)))
        .order_by(OutboxMessage.state, OutboxMessage.id.desc())
        .limit(SHOWN)
    ))
    runs = {r.name: r for r in db.session.scalars(select(ScheduledRun))}
    periodic = [(job, runs.get(job.name)) for job in sorted(registry.PERIODIC.values(), key=lambda j: j.name)]
    return QueueOverview(outbox.counts(), troubled, periodic, outbox.mode())


def retry(actor: User, message_id: int) -> OutboxMessage:
    """Give a failed message a new round of attempts (audited); exactly once however many
    staff click at the same moment."""
    _require_staff(actor)
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(_("该任务不存在。"))
    # Refreshed only on success: a message retried and finished meanwhile may be purged.
    if not change_if(
        message, OutboxMessage.state == "failed", refresh_unchanged=False,
        state="pending", attempts=0, available_at=utcnow(), finished_at=None,
    ):
        raise InvalidTransition(_("该任务不是失败状态，无需重试。"))
    record(actor, "outbox.retry", message, error=message.last_error[-500:])
    return message
