"""The short texts that get encoded for each programme and demand.

Encoding cost grows with length (about 1 ms per token on one core), and a long passage blurs
what it says into one vector. So each record becomes several short units: its title, a
profile (title and description, cut), and one unit per skill, module, outcome, certificate,
duty or requirement. The same units are the evidence shown in explanations.
"""
from __future__ import annotations

from .conditions import is_non_training_condition
from .types import Demand, Programme

__all__ = ["PROFILE_CHARS", "demand_conditions", "demand_units", "programme_units"]

#: Characters of a programme's profile unit (its title and the start of its description, which
#: says what the programme trains for) and of a demand's description unit. Profiles were the
#: largest share of encoded text: 96 instead of 128 characters cost 0.004 nDCG@10 on the
#: development split and saved a tenth of the encoding time of a catalogue.
PROFILE_CHARS = 96

#: Modules encoded per programme (the first ones; loaders put core courses first). Long course
#: lists add encoding time but almost no ranking quality; every module still counts lexically.
MAX_DENSE_MODULES = 3

_SKILL_HEAD = ("具有", "具备", "能够", "掌握")
_SKILL_TAIL = ("的能力", "能力")


def skill_phrase(text: str) -> str:
    """Drop the frame of a competence statement: ``具有X的能力`` becomes ``X``.

    Every skill line of a catalogue repeats the frame; it costs encoding time and pulls all
    skill vectors together. Short remainders (under four characters) are left whole.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    core = text
    for head in _SKILL_HEAD:
        if core.startswith(head):
            core = core[len(head) :]
            break
    for tail in _SKILL_TAIL:
        if core.endswith(tail):
            core = core[: -len(tail)]
            break
    return core if len(core) >= 4 else text


#: Skill lines encoded per programme. Catalogues list the specific competences first and the
#: generic ones (lifelong learning, IT literacy) last; every line still counts lexically. Skill
#: lines were a third of all encoded tokens: 2 instead of 6 scored within 0.002 nDCG@10 of it
#: on the development split and encode a catalogue about a quarter faster.
MAX_DENSE_SKILLS = 2

#: Kinds of programme units that can be evidence for a requirement.
EVIDENCE_KINDS = ("skill", "module", "outcome", "certificate")


def programme_units(p: Programme) -> list[tuple[str, str]]:
    """Return ``(kind, text)`` units of a programme, in a stable order.

    Parameters
    ----------
    p : Programme

    Returns
    -------
    list of (str, str)
        Kinds: ``title``, ``profile``, ``skill``, ``module``, ``outcome``, ``certificate``.
    """
    units = [("title", p.title)]
    if p.description:
        units.append(("profile", f"{p.title}：{p.description}"[:PROFILE_CHARS]))
    units += [("skill", skill_phrase(s)) for s in p.skills[:MAX_DENSE_SKILLS]]
    units += [("module", m.name) for m in p.modules[:MAX_DENSE_MODULES]]
    units += [("outcome", skill_phrase(o)) for o in p.outcomes]
    units += [("certificate", c) for c in p.certificates]
    return units


def demand_units(d: Demand) -> list[tuple[str, str]]:
    """Return ``(kind, text)`` units of a demand, in a stable order.

    Parameters
    ----------
    d : Demand

    Returns
    -------
    list of (str, str)
        Kinds: ``title``, ``description`` (if any), then ``duty``, ``requirement``, ``skill``.
        A demand's profile vector is the normalised mean of all its unit vectors: postings are
        short, and one long passage would cost as much to encode as all units together.
        Conditions that training cannot supply (:func:`demand_conditions`) are left out: they
        are no training need, and "能适应倒班" would pull the profile towards nothing taught.
    """
    title = d.title if not d.occupation or d.occupation in d.title else f"{d.title}（{d.occupation}）"
    units = [("title", title)]
    if d.description.strip():
        units.append(("description", d.description[:PROFILE_CHARS]))
    units += [(k, t) for k, t in d.requirement_items() if not _is_condition(k, t)]
    return units


def _is_condition(kind: str, text: str) -> bool:
    # Only 任职要求 lines state conditions on the person; duties (岗位职责) describe the work, and
    # the recogniser, written for requirement lines, misreads clinical or care duties
    # ("采集病史，检查患者") as health conditions: 99 of 3,896 occupation duties on the
    # development split, every one wrongly.
    return kind == "requirement" and is_non_training_condition(text)


def demand_conditions(d: Demand) -> list[str]:
    """The requirements (任职要求) of a demand that training cannot supply, in order."""
    return [t for k, t in d.requirement_items() if _is_condition(k, t)]
