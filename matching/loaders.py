"""Reading programmes, demands and judgements from JSON Lines and TREC qrels files.

Two record formats are accepted: the platform's (fields of :class:`~matching.types.Programme`
and :class:`~matching.types.Demand`) and the CN-VocMatch benchmark's (programmes with a
``courses`` string and ``certificates``; demands whose ``description`` holds the duties after
``岗位职责：`` and a ``summary``). Every error names the file, the line and the field.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputError
from .types import Demand, Programme

__all__ = ["load_demands", "load_programmes", "load_qrels", "split_items", "split_duties"]

T = TypeVar("T", Demand, Programme)

_SENTENCE = re.compile(r"[。；;\n]+")
_LIST = re.compile(r"[、，,]+")
_DUTY_HEAD = re.compile(r"^\s*(岗位职责|主要工作任务|工作任务|职责)\s*[：:]\s*")


def split_items(text: str) -> list[str]:
    """Split a course or certificate listing into items.

    ``"专业核心课程：甲、乙。实习实训：丙"`` becomes ``["甲", "乙", "丙"]``: sentences split on
    。/；, a leading ``label：`` is dropped, list items split on 、/，.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
        Items in order, without repeats.
    """
    items: list[str] = []
    for sentence in _SENTENCE.split(text):
        body = re.split(r"[：:]", sentence, maxsplit=1)[-1]
        for item in _LIST.split(body):
            item = item.strip(" 　.。")
            if item:
                items.append(item)
    return list(dict.fromkeys(items))


_CORE = re.compile(r"核心课")


def _course_modules(courses: str) -> list[str]:
    """Course items with those of core-course sections first (they define a programme)."""
    core: list[str] = []
    rest: list[str] = []
    for sentence in _SENTENCE.split(courses):
        (core if _CORE.search(sentence.split("：", 1)[0]) else rest).extend(split_items(sentence))
    return list(dict.fromkeys(core + rest))


def split_duties(text: str) -> tuple[str, list[str]]:
    """Split ``"岗位职责：甲；乙；丙。"`` into its head and ``["甲", "乙", "丙"]``.

    Parameters
    ----------
    text : str

    Returns
    -------
    (str, list of str)
        Text before the duty heading (usually empty) and the duties; when there is no heading
        the whole text is returned as the head and no duties.
    """
    m = _DUTY_HEAD.search(text)
    if not m:
        return text, []
    duties = [d.strip(" 　。.") for d in re.split(r"[；;\n]+", text[m.end() :])]
    return text[: m.start()].strip(), [d for d in duties if d]


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        # Only the open is guarded, so only its OSError becomes an InputError; `with fh` closes it.
        fh = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(record, dict):
                raise InputError(f"{path} line {lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def _programme_from_record(r: dict[str, Any]) -> Programme:
    modules: Any = r.get("modules")
    if modules is None and "courses" in r:
        courses = r["courses"]
        if not isinstance(courses, (str, list)):
            raise InputError(f"field 'courses' must be a string or a list, got {type(courses).__name__}")
        modules = _course_modules(courses) if isinstance(courses, str) else courses
    certificates: Any = r.get("certificates")
    if isinstance(certificates, str):
        certificates = split_items(certificates)
    if certificates is None and r.get("certificate_name"):
        kind = r.get("certificate_kind") or ""
        certificates = [f"{kind}：{r['certificate_name']}" if kind else r["certificate_name"]]
    return Programme(
        id=r.get("id"),  # type: ignore[arg-type]  # validated by Programme
        title=r.get("title"),  # type: ignore[arg-type]
        description=r.get("description") or "",
        modules=modules or (),
        outcomes=r.get("outcomes") or (),
        skills=r.get("skills") or (),
        certificates=certificates or (),
        level=r.get("level"),
        total_hours=r.get("total_hours"),
        mode=r.get("mode"),
        district=r.get("district"),
        capacity=r.get("capacity"),
        fee=r.get("fee"),
        subsidy_eligible=r.get("subsidy_eligible"),
        institution_id=None if r.get("institution_id") is None else str(r["institution_id"]),
    )


def _demand_from_record(r: dict[str, Any]) -> Demand:
    description = r.get("description") or ""
    duties = r.get("duties")
    if not isinstance(description, str):
        raise InputError(f"field 'description' must be a string, got {type(description).__name__}")
    if duties is None:
        head, duties = split_duties(description)
        if duties:
            # Benchmark format: the description is only the duty list; the summary describes.
            description = " ".join(t for t in (head, r.get("summary") or "") if t)
    elif r.get("summary"):
        description = " ".join(t for t in (r["summary"], description) if t)
    return Demand(
        id=r.get("id"),  # type: ignore[arg-type]
        title=r.get("title"),  # type: ignore[arg-type]
        occupation=r.get("occupation") or "",
        description=description,
        duties=duties,
        requirements=r.get("requirements") or (),
        skills=r.get("skills") or (),
        skill_level=r.get("skill_level"),
        headcount=r.get("headcount"),
        district=r.get("district"),
        mode=r.get("mode"),
    )


def _load(path: str | os.PathLike[str], build: Callable[[dict[str, Any]], T], limit: int | None) -> list[T]:
    path = Path(path)
    out: list[T] = []
    seen: dict[str, int] = {}
    for lineno, record in _read_jsonl(path):
        try:
            obj = build(record)
        except InputError as exc:
            raise InputError(f"{path} line {lineno}: {exc}") from exc
        if obj.id in seen:
            raise InputError(f"{path} line {lineno}: duplicate id {obj.id!r} (first on line {seen[obj.id]})")
        seen[obj.id] = lineno
        out.append(obj)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise InputError(f"{path}: no records")
    return out


def load_programmes(path: str | os.PathLike[str], limit: int | None = None) -> list[Programme]:
    """Read programmes from a JSON Lines file.

    Parameters
    ----------
    path : path-like
    limit : int, optional
        Stop after this many records.

    Returns
    -------
    list of Programme

    Raises
    ------
    InputError
        On unreadable files, invalid JSON, invalid fields or duplicate ids, naming the line.
    """
    return _load(path, _programme_from_record, limit)


def load_demands(path: str | os.PathLike[str], limit: int | None = None) -> list[Demand]:
    """Read demands from a JSON Lines file.

    Parameters
    ----------
    path : path-like
    limit : int, optional
        Stop after this many records.

    Returns
    -------
    list of Demand

    Raises
    ------
    InputError
        On unreadable files, invalid JSON, invalid fields or duplicate ids, naming the line.
    """
    return _load(path, _demand_from_record, limit)


def load_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Read TREC judgements ``query_id 0 doc_id grade``.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
        ``{query_id: {doc_id: grade}}``.

    Raises
    ------
    InputError
        On a line without four fields, a non-integer or negative grade, or a pair judged
        twice with different grades, naming the line.
    """
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    try:
        # Only the open is guarded, so only its OSError becomes an InputError; `with fh` closes it.
        fh = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4:
                raise InputError(f"{path} line {lineno}: expected 4 fields 'query 0 doc grade', got {len(parts)}")
            qid, _, did, grade_text = parts
            try:
                grade = int(grade_text)
            except ValueError:
                raise InputError(f"{path} line {lineno}: grade {grade_text!r} is not an integer") from None
            if grade < 0:
                raise InputError(f"{path} line {lineno}: grade {grade} is negative")
            previous = qrels.setdefault(qid, {}).get(did)
            if previous is not None and previous != grade:
                raise InputError(f"{path} line {lineno}: {qid} {did} judged {previous} and {grade}")
            qrels[qid][did] = grade
    if not qrels:
        raise InputError(f"{path}: no judgements")
    return qrels
