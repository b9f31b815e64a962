"""Constraints the database itself enforces, whatever the services check first."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from chanjiao.extensions import db
from chanjiao.models import InterestRequest


def _request(demand, programme, enterprise, institution, user, status="pending"):
    return InterestRequest(demand_id=demand.id, programme_id=programme.id, status=status,
                           from_organisation_id=enterprise.id, to_organisation_id=institution.id,
                           created_by_id=user.id)


def test_one_live_interest_request_per_pair(app, make):
    enterprise, institution = make.org("enterprise"), make.org("institution")
    user = make.user(enterprise)
    demand, programme = make.demand(enterprise), make.programme(institution)
    # Declined and withdrawn requests may pile up; a new one may follow them.
    db.session.add_all([
        _request(demand, programme, enterprise, institution, user, "declined"),
        _request(demand, programme, enterprise, institution, user, "withdrawn"),
        _request(demand, programme, enterprise, institution, user, "pending"),
    ])
    db.session.commit()
    db.session.add(_request(demand, programme, enterprise, institution, user, "accepted"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
