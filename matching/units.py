"""The short texts that get encoded for each programme and demand.

Encoding cost grows with length (about 1 ms per token on one core), and a long passage blurs
what it says into one vector. So each record becomes several short units: its title, a
profile (title and description, cut), and one unit per skill, module, outcome, certificate,
duty or requirement. The same units are the evidence shown in explanations.
"""
from __future__ import annotations

from .types import Demand, Programme

__all__ = ["PROFILE_CHARS", "demand_units", "programme_units"]

#: Characters of the profile unit. Covers a typical programme description (about 150 characters)
#: while keeping the encoding of a whole catalogue within minutes.
PROFILE_CHARS = 200

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
    units += [("skill", s) for s in p.skills]
    units += [("module", m.name) for m in p.modules]
    units += [("outcome", o) for o in p.outcomes]
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
        Kinds: ``title``, ``profile``, then ``duty``, ``requirement``, ``skill``.
    """
    title = d.title if not d.occupation or d.occupation in d.title else f"{d.title}（{d.occupation}）"
    units = [("title", title)]
    body = "；".join(x for x in (d.description, *d.duties, *d.requirements, *d.skills) if x)
    if body:
        units.append(("profile", f"{title}：{body}"[:PROFILE_CHARS]))
    units += list(d.requirement_items())
    return units
