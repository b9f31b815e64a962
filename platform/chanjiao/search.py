"""Chinese full-text search over postings, portable across SQLite and PostgreSQL.

Posting text is segmented with jieba (search mode, so that 电工 is found inside 低压电工作业)
into an inverted index (:class:`~chanjiao.models.SearchTerm`). A query is segmented the same
way; a posting matches when it holds every query word, and ranks by the summed weights.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import delete, func, select

from .extensions import db
from .models import Demand, Programme, SearchTerm

MAX_TERM_LENGTH = 50
MAX_QUERY_TERMS = 8
# Weights by field: a hit in the title says more than one in a long description.
TITLE_WEIGHT, SKILL_WEIGHT, BODY_WEIGHT = 3.0, 2.0, 1.0

_WORD = re.compile(r"[\w\u4e00-\u9fff]+", re.UNICODE)
_jieba_lock = threading.Lock()
_jieba = None


def _segmenter():
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def terms(text: str) -> list[str]:
    """Segment ``text`` into lower-cased search terms (words and their sub-words)."""
    jieba = _segmenter()
    out: list[str] = []
    for chunk in _WORD.findall(text.lower()):
        for word in jieba.cut_for_search(chunk):
            word = word.strip()
            if word and len(word) <= MAX_TERM_LENGTH and (len(word) > 1 or not word.isascii()):
                out.append(word)
    return out


def query_terms(query: str) -> list[str]:
    """The distinct words of a query, in order, each of which a result must contain."""
    jieba = _segmenter()
    seen: dict[str, None] = {}
    for chunk in _WORD.findall(query.lower()):
        for word in jieba.cut(chunk):
            word = word.strip()
            if word and len(word) <= MAX_TERM_LENGTH:
                seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_TERMS]


def _weighted_terms(fields: Iterable[tuple[str, float]]) -> dict[str, float]:
    weights: dict[str, float] = defaultdict(float)
    for text, weight in fields:
        for term in terms(text or ""):
            weights[term] += weight
    return weights


def _demand_fields(demand: Demand) -> list[tuple[str, float]]:
    return [
        (demand.title, TITLE_WEIGHT),
        (demand.occupation, TITLE_WEIGHT),
        (" ".join(s.name for s in demand.skills), SKILL_WEIGHT),
        (demand.description, BODY_WEIGHT),
        (" ".join(demand.duties or []), BODY_WEIGHT),
        (" ".join(demand.requirements or []), BODY_WEIGHT),
        (demand.organisation.name if demand.organisation else "", BODY_WEIGHT),
    ]


def _programme_fields(programme: Programme) -> list[tuple[str, float]]:
    return [
        (programme.title, TITLE_WEIGHT),
        (" ".join(s.name for s in programme.skills), SKILL_WEIGHT),
        (programme.certificate_name, SKILL_WEIGHT),
        (programme.description, BODY_WEIGHT),
        (" ".join(m.get("name", "") for m in programme.modules or []), BODY_WEIGHT),
        (" ".join(programme.outcomes or []), BODY_WEIGHT),
        (programme.organisation.name if programme.organisation else "", BODY_WEIGHT),
    ]


def _store(kind: str, posting_id: int, weights: dict[str, float]) -> None:
    db.session.execute(
        delete(SearchTerm).where(SearchTerm.posting_kind == kind, SearchTerm.posting_id == posting_id)
    )
    db.session.add_all(
        SearchTerm(posting_kind=kind, posting_id=posting_id, term=term, weight=weight)
        for term, weight in weights.items()
    )


def index_demand(demand: Demand) -> None:
    """(Re)build the index entries of one demand; the caller commits."""
    db.session.flush()
    _store("demand", demand.id, _weighted_terms(_demand_fields(demand)))


def index_programme(programme: Programme) -> None:
    """(Re)build the index entries of one programme; the caller commits."""
    db.session.flush()
    _store("programme", programme.id, _weighted_terms(_programme_fields(programme)))


def reindex_all() -> int:
    """Rebuild the whole index; returns the number of postings indexed. The caller commits."""
    db.session.execute(delete(SearchTerm))
    count = 0
    for demand in db.session.scalars(select(Demand)):
        index_demand(demand)
        count += 1
    for programme in db.session.scalars(select(Programme)):
        index_programme(programme)
        count += 1
    return count


def ranked_ids(kind: str, query: str) -> list[int] | None:
    """Ids of ``kind`` postings holding every query word, best first.

    Returns None for a query with no searchable words (the caller then lists everything).
    """
    words = query_terms(query)
    if not words:
        return None
    score = func.sum(SearchTerm.weight)
    stmt = (
        select(SearchTerm.posting_id, score.label("score"))
        .where(SearchTerm.posting_kind == kind, SearchTerm.term.in_(words))
        .group_by(SearchTerm.posting_id)
        .having(func.count(func.distinct(SearchTerm.term)) == len(words))
        .order_by(score.desc(), SearchTerm.posting_id.desc())
    )
    return [row.posting_id for row in db.session.execute(stmt)]
