"""What an organisation's dashboard shows: its status and its postings."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..models import Demand, Organisation, Programme, User
from ..staff.services import posting_counts


@dataclass(frozen=True)
class Overview:
    organisation: Organisation
    posting_kind: str  # "demand" | "programme"
    counts: dict[str, int]
    postings: list[Demand] | list[Programme]


def organisation_overview(actor: User) -> Overview:
    """The actor's organisation with counts and a list of its postings, latest change first."""
    organisation = actor.organisation
    if organisation is None:
        raise NotFound(_("机构不存在。"))
    model = Demand if organisation.kind == "enterprise" else Programme
    postings = list(
        db.session.scalars(
            select(model)
            .where(model.organisation_id == organisation.id)
            .order_by(model.updated_at.desc(), model.id.desc())
        )
    )
    counts = posting_counts(organisation)
    return Overview(
        organisation=organisation,
        posting_kind="demand" if model is Demand else "programme",
        counts=counts["demands" if model is Demand else "programmes"],
        postings=postings,
    )
