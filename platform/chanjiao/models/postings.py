"""Skill demands (企业技能需求), training programmes (培训项目), the skill vocabulary
and the search index over postings."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import UTCDateTime, utcnow
from .accounts import Organisation, User

demand_skills = Table(
    "demand_skill",
    db.metadata,
    Column("demand_id", ForeignKey("demand.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skill.id", ondelete="CASCADE"), primary_key=True),
)

programme_skills = Table(
    "programme_skill",
    db.metadata,
    Column("programme_id", ForeignKey("programme.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skill.id", ondelete="CASCADE"), primary_key=True),
)


class Skill(db.Model):
    """A normalised skill tag with its synonyms (e.g. 天车工 = 桥式起重机司机)."""

    __tablename__ = "skill"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A merged tag keeps existing so that old links and URLs resolve to the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("skill.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    merged_into: Mapped[Skill | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Skill {self.id} {self.name}>"


class Demand(db.Model):
    """An enterprise's skill demand: the role, its duties and the skills and level it needs."""

    __tablename__ = "demand"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))  # the role
    occupation: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    duties: Mapped[list[str]] = mapped_column(JSON, default=list)  # 岗位职责
    requirements: Mapped[list[str]] = mapped_column(JSON, default=list)  # 任职要求
    skill_level: Mapped[str | None] = mapped_column(String(20))  # choices.SKILL_LEVELS
    headcount: Mapped[int] = mapped_column(Integer, default=1)
    district: Mapped[str] = mapped_column(String(20), index=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(20), default="offline")  # choices.TRAINING_MODES
    desired_start: Mapped[date | None] = mapped_column(Date)
    budget_per_person: Mapped[int | None] = mapped_column(Integer)  # yuan
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Hash of the encoder and the texts whose vectors are stored (see matchmaking.vectors_key):
    # the live catalogue takes a posting only when it equals the hash of its current texts.
    vectors_key: Mapped[str | None] = mapped_column(String(40))

    organisation: Mapped[Organisation] = relationship(back_populates="demands")
    created_by: Mapped[User | None] = relationship()
    skills: Mapped[list[Skill]] = relationship(secondary=demand_skills, order_by=Skill.name)

    def __repr__(self) -> str:
        return f"<Demand {self.id} {self.title!r} {self.status}>"


class Programme(db.Model):
    """A training institution's programme: what it teaches, to which level, with which certificate."""

    __tablename__ = "programme"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # 课程模块: [{"name": str, "hours": int}, ...]
    modules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    outcomes: Mapped[list[str]] = mapped_column(JSON, default=list)  # learning outcomes
    level: Mapped[str | None] = mapped_column(String(20))  # choices.SKILL_LEVELS
    certificate_kind: Mapped[str] = mapped_column(String(40), default="none")
    certificate_name: Mapped[str] = mapped_column(String(100), default="")
    total_hours: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(20), default="offline")
    district: Mapped[str] = mapped_column(String(20), index=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    fee: Mapped[int] = mapped_column(Integer, default=0)  # yuan per trainee
    subsidy_eligible: Mapped[bool] = mapped_column(Boolean, default=False)  # 补贴性培训
    schedule: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    vectors_key: Mapped[str | None] = mapped_column(String(40))  # see Demand.vectors_key

    organisation: Mapped[Organisation] = relationship(back_populates="programmes")
    created_by: Mapped[User | None] = relationship()
    skills: Mapped[list[Skill]] = relationship(secondary=programme_skills, order_by=Skill.name)

    def __repr__(self) -> str:
        return f"<Programme {self.id} {self.title!r} {self.status}>"


class SearchTerm(db.Model):
    """Inverted index of segmented posting text, so that search works alike on SQLite and
    PostgreSQL with real Chinese word segmentation rather than one substring ``LIKE``."""

    __tablename__ = "search_term"
    __table_args__ = (Index("ix_search_term_term_kind", "term", "posting_kind"),)

    posting_kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # demand | programme
    posting_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(50), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
