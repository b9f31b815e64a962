"""Publishing a posting refreshes the staff's suggested pairings (lexical matching)."""
from __future__ import annotations

from sqlalchemy import select

from chanjiao.extensions import db
from chanjiao.models import Pairing
from chanjiao.postings import services as postings


def _suggested():
    return {(p.demand_id, p.programme_id): p.status for p in db.session.scalars(select(Pairing))}


def test_publishing_a_demand_suggests_pairings(app, make):
    institution = make.org("institution")
    programme = make.programme(institution)  # published, on new-energy vehicle batteries
    enterprise = make.org("enterprise")
    hr = make.user(enterprise)
    demand = make.demand(enterprise, status="draft")
    postings.publish_demand(hr, demand.id)
    db.session.commit()
    assert _suggested() == {(demand.id, programme.id): "suggested"}


def test_publishing_a_programme_suggests_it_for_the_demands_it_fits(app, make):
    enterprise = make.org("enterprise")
    demand = make.demand(enterprise)  # open, on new-energy vehicle batteries
    institution = make.org("institution")
    trainer = make.user(institution)
    programme = make.programme(institution, status="draft")
    postings.publish_programme(trainer, programme.id)
    db.session.commit()
    assert _suggested() == {(demand.id, programme.id): "suggested"}


def test_a_staff_decision_survives_republishing(app, make):
    institution = make.org("institution")
    programme = make.programme(institution)
    enterprise = make.org("enterprise")
    hr = make.user(enterprise)
    demand = make.demand(enterprise, status="closed")
    db.session.add(Pairing(demand_id=demand.id, programme_id=programme.id, status="rejected",
                           decision_reason="课程不对口"))
    db.session.commit()
    postings.publish_demand(hr, demand.id)
    db.session.commit()
    pairing = db.session.scalar(select(Pairing))
    assert (pairing.status, pairing.decision_reason) == ("rejected", "课程不对口")
