"""Chinese full-text search over postings, portable across SQLite and PostgreSQL.

Posting text is segmented with jieba (search mode, so that 电工 is found inside 低压电工作业)
into an inverted index (:class:`~chanjiao.models.SearchTerm`). A query is segmented the same
way; a posting matches when it holds every query word, and ranks by the summed weights.

Segmentation does not always split a text where a searcher would: jieba indexes 桥式起重机司机
as 桥式 / 起重 / 机 / 司机, so the word 起重机 would never match. Chinese runs are therefore also
indexed as character bigrams (at a lower weight), and a query word is found either as a whole
term or, failing that, by all of its bigrams.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import delete, select

from .extensions import db
from .models import Demand, Programme, SearchTerm

MAX_TERM_LENGTH = 50
MAX_QUERY_TERMS = 8
# Weights by field: a hit in the title says more than one in a long description.
TITLE_WEIGHT, SKILL_WEIGHT, BODY_WEIGHT = 3.0, 2.0, 1.0
# Bigrams make recall robust to segmentation; whole-word hits should still rank first.
BIGRAM_FACTOR = 0.5

_WORD = re.compile(r"[\w\u4e00-\u9fff]+", re.UNICODE)
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
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


def bigrams(text: str) -> list[str]:
    """Distinct two-character sequences of the Chinese runs in ``text``, in order."""
    seen: dict[str, None] = {}
    for run in _HAN_RUN.findall(text):
        for i in range(len(run) - 1):
            seen.setdefault(run[i:i + 2], None)
    return list(seen)


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
        for pair in bigrams((text or "").lower()):
            weights[pair] += weight * BIGRAM_FACTOR
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

    A word is held when the posting has it as a term, or has every bigram of it (so that
    起重机 finds 桥式起重机司机). Returns None for a query with no searchable words (the
    caller then lists everything).
    """
    words = query_terms(query)
    if not words:
        return None
    pairs = {word: bigrams(word) for word in words}
    wanted = set(words).union(*pairs.values())
    stmt = select(SearchTerm.posting_id, SearchTerm.term, SearchTerm.weight).where(
        SearchTerm.posting_kind == kind, SearchTerm.term.in_(sorted(wanted))
    )
    found: dict[int, dict[str, float]] = defaultdict(dict)
    for posting_id, term, weight in db.session.execute(stmt):
        found[posting_id][term] = weight
    scores: dict[int, float] = {}
    for posting_id, held in found.items():
        score = 0.0
        for word in words:
            if word in held:
                score += held[word]
            elif pairs[word] and all(pair in held for pair in pairs[word]):
                score += min(held[pair] for pair in pairs[word])
            else:
                break
        else:
            scores[posting_id] = score
    return sorted(scores, key=lambda posting_id: (-scores[posting_id], -posting_id))
