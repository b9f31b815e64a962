"""Training levels, and the level a role implies.

China's occupation classification separates professional and technical staff (专业技术人员:
engineers, technicians, physicians, researchers, designers) from skilled workers, and
vocational education follows it: secondary vocational programmes (中职) train skilled workers,
professional roles draw on 高职专科 and above. A posting rarely states this; the role's name
(``…工程师``, ``…工程技术人员``) or its definition (``从事……的专业人员``) does.
"""
from __future__ import annotations

from .types import Demand

__all__ = ["LEVELS", "level_rank", "role_min_level", "skills_track_rank"]

#: Level words in ascending order; several spellings (skill grades, school levels) share a rank.
LEVELS: tuple[tuple[str, ...], ...] = (
    ("五级", "初级", "中职"),
    ("四级", "中级", "高职", "高职专科", "专科"),
    ("三级", "高级", "职教本科", "本科"),
    ("二级", "技师"),
    ("一级", "高级技师"),
)
_WORDS_LONGEST_FIRST = sorted(
    ((w, rank) for rank, words in enumerate(LEVELS) for w in words), key=lambda wr: -len(wr[0])
)

#: Rank of 高职专科, the lowest level that trains professional and technical staff.
PROFESSIONAL_MIN_LEVEL = 1

#: Endings of professional and technical role names in the classification and in job ads.
PROFESSIONAL_ROLE_WORDS = ("工程技术人员", "技术人员", "专业人员", "研究人员", "研究员", "工程师", "医师", "设计人员")
#: Phrases that define a role as professional in a description (the classification's own
#: definitions read ``从事……的专业人员`` or ``……的工程技术人员``).
PROFESSIONAL_DEFINITION_WORDS = ("专业技术人员", "的工程技术人员", "的专业人员")


def level_rank(text: str | None) -> int | None:
    """Rank of a level word in ``text`` (0 = 五级/初级/中职 … 4 = 一级/高级技师), or None.

    The longest matching word wins, so ``高级技师`` is a 一级 rank and not a 技师 one.

    Parameters
    ----------
    text : str or None

    Returns
    -------
    int or None
    """
    if not text:
        return None
    for word, rank in _WORDS_LONGEST_FIRST:
        if word in text:
            return rank
    return None


def role_min_level(demand: Demand) -> int | None:
    """The lowest programme level that a demand's role calls for, when its texts imply one.

    Parameters
    ----------
    demand : Demand

    Returns
    -------
    int or None
        :data:`PROFESSIONAL_MIN_LEVEL` for a professional or technical role, else None (the
        role says nothing about level; a stated skill level is a separate prior).
    """
    names = (demand.title, demand.occupation)
    if any(w in name for name in names if name for w in PROFESSIONAL_ROLE_WORDS):
        return PROFESSIONAL_MIN_LEVEL
    if demand.description and any(w in demand.description for w in PROFESSIONAL_DEFINITION_WORDS):
        return PROFESSIONAL_MIN_LEVEL
    return None


def skills_track_rank(text: str | None) -> int | None:
    """Level rank of a programme on the skills track, None when unknown or not on it.

    Professional title programmes (初级/中级/高级职称) prepare professional staff at every rank,
    so no role is above them.

    Parameters
    ----------
    text : str or None
        The programme's level.

    Returns
    -------
    int or None
    """
    if text and "职称" in text:
        return None
    return level_rank(text)
