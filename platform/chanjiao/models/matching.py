"""What the matching engine needs to persist: text vectors and ranker versions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import UTCDateTime, utcnow


class TextVector(db.Model):
    """One encoded text: ``namespace`` names the encoder and role (query/document), ``key`` is
    the hash of the text. Postings share vectors for equal texts, and an edit only encodes the
    texts that changed."""

    __tablename__ = "text_vector"

    namespace: Mapped[str] = mapped_column(String(120), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # float16, little-endian
    # Indexed: workers compare its maximum to notice vectors that another process stored.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RankerVersion(db.Model):
    """A ranker trained from staff decisions. At most one is active (none: the ranker shipped
    with the engine). Its saved files (JSON parameters plus ``.npy`` arrays, never a pickle) are
    kept here, base64-encoded, so that every worker on every host loads the same model."""

    __tablename__ = "ranker_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))  # dense | lexical
    encoder: Mapped[str] = mapped_column(String(120), default="")
    files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # file name -> base64
    metrics_before: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics_after: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decisions: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("ranker_version.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
