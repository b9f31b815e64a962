"""How changes reach the live catalogue, off the request path.

- Status changes (a posting published, closed, archived; an organisation approved or
  suspended) are caught when they are flushed and recorded as ``catalogue_change`` rows in
  the same unit of work. Drafts record nothing: a draft causes no matching work.
- A saved posting's texts are encoded by the ``matching.encode`` job (one per posting at a
  time: messages coalesce by posting), which then records the change, so a worker applies
  an edit only once its vectors exist, serving the previous version until then.
- ``matching.after_publish`` refreshes the staff's suggested pairings and answers match
  alerts once the posting is in the catalogue.
- The tick's ``matching.encode_stale`` finds postings still without vectors (saved while
  the encoder was down, or whose job gave up) and queues them again: no restart and no
  manual ``reindex``.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from . import matchmaking
from .extensions import db
from .jobs import enqueue
from .jobs.registry import handler, periodic
from .models import Demand, Organisation, Programme

log = logging.getLogger(__name__)

_PUBLIC_STATUS = matchmaking.PUBLIC_STATUS
_KIND = matchmaking.CATALOGUE_KIND
_MODELS = {kind: model for model, kind in _KIND.items()}
ENCODE_STALE_BATCH = 500


class NotInCatalogueYet(Exception):
    """The posting's vectors or its catalogue change are still on their way: retry later."""


def encode_later(posting: Programme | Demand, *, texts_changed: bool = True) -> None:
    """Queue the encoding of a saved posting (coalesced with any pending one)."""
    kind = _KIND[type(posting)]
    if texts_changed and posting.vectors_key is not None:
        posting.vectors_key = None  # until the job has stored the new texts' vectors
    enqueue("matching.encode", {"kind": kind, "id": posting.id}, key=f"encode:{kind}:{posting.id}")


def after_publish_later(posting: Programme | Demand, *, alerts_only: bool = False) -> None:
    """Queue what follows a posting becoming public (or a public posting's edit, which
    answers match alerts only)."""
    kind = _KIND[type(posting)]
    payload = {"kind": kind, "id": posting.id, "alerts_only": alerts_only}
    enqueue("matching.after_publish", payload, key=f"published:{kind}:{posting.id}:{int(alerts_only)}")


def _load(payload: dict) -> Programme | Demand | None:
    from .jobs.outbox import PermanentFailure

    model = _MODELS.get(payload.get("kind"))
    posting_id = payload.get("id")
    if model is None or not isinstance(posting_id, int):
        raise PermanentFailure(f"bad posting reference {payload!r}")
    return db.session.get(model, posting_id)


@handler("matching.encode")
def encode(payload: dict) -> None:
    """Encode the posting's current texts (if it still exists and is not archived), then
    record the change when it is public."""
    posting = _load(payload)
    if posting is None or posting.status == "archived":
        return
    if matchmaking.encoder() is not None:
        # Records the catalogue change itself once the vectors are stored.
        matchmaking.ensure_encoded(
            programmes=[posting] if isinstance(posting, Programme) else [],
            demands=[posting] if isinstance(posting, Demand) else [],
        )
    elif matchmaking.is_public(posting):
        matchmaking.record_change(_KIND[type(posting)], posting.id)


@handler("matching.after_publish")
def after_publish(payload: dict) -> None:
    """Staff suggestions and match alerts for a posting that just became public."""
    from .alerts.services import check_new_posting
    from .curation.services import refresh_for_demand

    posting = _load(payload)
    if posting is None or not matchmaking.is_public(posting):
        return
    if not matchmaking.is_ready(posting):
        raise NotInCatalogueYet(f"{payload['kind']} {posting.id} waits for its vectors")
    catalogue = matchmaking.update_catalogue()
    held = catalogue.programmes if isinstance(posting, Programme) else catalogue.demands
    if posting.id not in held:
        raise NotInCatalogueYet(f"{payload['kind']} {posting.id} is not in the live catalogue yet")
    if payload.get("alerts_only"):
        demands = []
    elif isinstance(posting, Programme):
        # Only demands the programme is offered to (probability at least tau) get suggestions.
        demands = [r.demand for r in matchmaking.recommend_demands(posting, k=5) if r.offered]
    else:
        demands = [posting]
    for demand in demands:
        refresh_for_demand(demand)
    check_new_posting(posting)


@periodic("matching.encode_stale", every=timedelta(minutes=2))
def encode_stale() -> None:
    """Queue the encoding of postings whose current texts have no vectors yet."""
    if matchmaking.encoder() is None:
        return
    for model in (Programme, Demand):
        rows = db.session.scalars(
            select(model).where(model.vectors_key.is_(None), model.status != "archived")
            .order_by(model.id).limit(ENCODE_STALE_BATCH)
        )
        for posting in rows:
            encode_later(posting, texts_changed=False)


# --------------------------------------------------------------------------- status changes


def _moves_catalogue(posting: Programme | Demand, before: str | None, after: str | None) -> bool:
    """Whether a status change takes the posting into or out of the public catalogue."""
    return before != after and _PUBLIC_STATUS[type(posting)] in (before, after)


def record_status_change(posting: Programme | Demand, before: str | None, after: str | None) -> None:
    """Record a posting's status change made by a conditional UPDATE, which the flush hooks
    below do not see."""
    if _moves_catalogue(posting, before, after):
        matchmaking.record_change(_KIND[type(posting)], posting.id)


def _status_change(obj) -> tuple[str | None, str | None] | None:
    history = db.inspect(obj).attrs.status.history
    if not history.has_changes():
        return None
    before = history.deleted[0] if history.deleted else None
    after = history.added[0] if history.added else None
    return before, after


@event.listens_for(Session, "before_flush")
def _record_status_changes(session: Session, flush_context, instances) -> None:
    for obj in list(session.dirty):
        if isinstance(obj, (Programme, Demand)):
            change = _status_change(obj)
            if change is not None and _moves_catalogue(obj, *change):
                session.add(matchmaking.CatalogueChange(kind=_KIND[type(obj)], entity_id=obj.id))
        elif isinstance(obj, Organisation):
            change = _status_change(obj)
            if change is not None and (set(change) & {"approved", "suspended"}):
                session.add(matchmaking.CatalogueChange(kind="standing", entity_id=obj.id))
    for obj in list(session.new):
        if isinstance(obj, (Programme, Demand)) and obj.status == _PUBLIC_STATUS[type(obj)]:
            # Created public (imports, the demo loader): its id is known only after the flush.
            session.info.setdefault("chanjiao.catalogue.new", []).append(obj)


@event.listens_for(Session, "after_flush_postexec")
def _record_new_public(session: Session, flush_context) -> None:
    # Added after the flush proper: the session flushes these rows in its next round.
    for obj in session.info.pop("chanjiao.catalogue.new", []):
        session.add(matchmaking.CatalogueChange(kind=_KIND[type(obj)], entity_id=obj.id))
