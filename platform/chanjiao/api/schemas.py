"""JSON Schemas of the API's bodies, a validator for the subset of JSON Schema they use, and
the conversions between JSON and the postings services' inputs and rows.

The request schemas are both documentation (``openapi.json``) and the API's first check: a body
is refused here for what its schema refuses (types, required and unknown fields, dates, ranges,
lengths, codes), so that the document states the server's real limits; the services then refuse
control characters and blank required text, naming the field, and apply the rules that span
fields, as they do for the web forms.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from numbers import Real
from typing import Any

from flask_babel import gettext as _

from .. import choices
from ..matchmaking import Recommendation
from ..models import Demand, Organisation, Programme
from ..postings import services as postings
from ..postings.services import DemandInput, ProgrammeInput
from ..skills import MAX_SKILL_LENGTH

# --------------------------------------------------------------------------- schemas


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


# The control and format characters (Unicode Cc and Cf, as of Python 3.11's Unicode 14) that
# stored text refuses (chanjiao.common.forbidden_characters): all but line breaks, tabs and the
# zero-width characters, which are dropped instead. tests/test_api_openapi.py checks the list
# against that function.
FORBIDDEN_RANGES = (
    (0x0000, 0x0008), (0x000B, 0x000C), (0x000E, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD),
    (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200E, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064),
    (0x2066, 0x206F), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)


def _class_char(code: int) -> str:
    # \uXXXX reads the same in ECMA-262 and Python patterns; beyond the BMP only the character
    # itself does.
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


_FORBIDDEN = "".join(
    _class_char(low) + ("" if low == high else "-" + _class_char(high)) for low, high in FORBIDDEN_RANGES
)
#: Text without control or format characters.
TEXT_PATTERN = f"^[^{_FORBIDDEN}]*$"
#: The same, with at least one character that is not a space.
REQUIRED_TEXT_PATTERN = f"^[^{_FORBIDDEN}]*[^{_FORBIDDEN}\\s][^{_FORBIDDEN}]*$"
_TEXT_RULE = "No control or format characters (Unicode Cc, Cf) other than line breaks and tabs."
_REQUIRED_RULE = (
    "Must show at least one visible character (a letter, digit, punctuation mark or symbol), "
    "and no control or format characters (Unicode Cc, Cf) other than line breaks and tabs. "
    "Zero-width characters and surrounding spaces are dropped."
)


def _text(max_length: int, description: str = "", *, required: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length}
    if required:
        schema.update(minLength=1, pattern=REQUIRED_TEXT_PATTERN)
    else:
        schema["pattern"] = TEXT_PATTERN
    rule = _REQUIRED_RULE if required else _TEXT_RULE
    schema["description"] = f"{description} {rule}" if description else rule
    return schema


def _lines(description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "maxLength": postings.MAX_LINE, "pattern": TEXT_PATTERN},
        "maxItems": postings.MAX_LINES,
        "description": f"{description} Empty items are dropped. {_TEXT_RULE}",
    }


def _codes(vocabulary: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(vocabulary), "description": description}


SKILLS = {
    "type": "array",
    "items": {"type": "string", "maxLength": MAX_SKILL_LENGTH, "pattern": TEXT_PATTERN},
    "maxItems": postings.MAX_SKILLS,
    "description": "Skill tags; unknown tags are created.",
}

DEMAND_FIELDS: dict[str, Any] = {
    "title": _text(postings.MAX_TITLE, "The role (岗位).", required=True),
    "occupation": _text(postings.MAX_OCCUPATION),
    "description": _text(postings.MAX_DESCRIPTION),
    "duties": _lines("Duties (岗位职责), one per item."),
    "requirements": _lines("Requirements (任职要求), one per item."),
    "skills": SKILLS,
    "skill_level": _codes(choices.SKILL_LEVELS, "Required skill level."),
    "headcount": {"type": "integer", "minimum": 1, "maximum": postings.MAX_HEADCOUNT},
    "district": _codes(choices.DISTRICTS, "Street or area of Chaoyang District."),
    "location": _text(postings.MAX_LOCATION),
    "mode": _codes(choices.TRAINING_MODES, "Training mode."),
    "desired_start": {"type": ["string", "null"], "format": "date"},
    "budget_per_person": {"type": ["integer", "null"], "minimum": 0, "maximum": postings.MAX_BUDGET},
}
DEMAND_REQUIRED = ["title", "district", "skill_level"]

MODULE = {
    "type": "object",
    "properties": {
        "name": _text(postings.MAX_LINE, required=True),
        "hours": {"type": "integer", "minimum": 1, "maximum": postings.MAX_MODULE_HOURS},
    },
    "required": ["name", "hours"],
    "additionalProperties": False,
}

PROGRAMME_FIELDS: dict[str, Any] = {
    "title": _text(postings.MAX_TITLE, required=True),
    "description": _text(postings.MAX_DESCRIPTION),
    "modules": {"type": "array", "items": {"$ref": "#/components/schemas/Module"}, "maxItems": postings.MAX_LINES},
    "outcomes": _lines("Learning outcomes, one per item."),
    "skills": SKILLS,
    "level": _nullable(_codes(choices.SKILL_LEVELS, "Level the programme trains to.")),
    "certificate_kind": _codes(choices.CERTIFICATE_KINDS, "Certificate awarded."),
    "certificate_name": _text(postings.MAX_CERTIFICATE_NAME, "Required unless certificate_kind is none."),
    "total_hours": {
        "type": "integer",
        "minimum": 1,
        "maximum": postings.MAX_TOTAL_HOURS,
        "description": "Not less than the sum of the modules' hours.",
    },
    "mode": _codes(choices.TRAINING_MODES, "Training mode."),
    "district": _codes(choices.DISTRICTS, "Street or area of Chaoyang District."),
    "location": _text(postings.MAX_LOCATION),
    "capacity": {"type": "integer", "minimum": 1, "maximum": postings.MAX_CAPACITY},
    "fee": {"type": "integer", "minimum": 0, "maximum": postings.MAX_FEE, "description": "Yuan per trainee."},
    "subsidy_eligible": {"type": "boolean"},
    "schedule": _text(postings.MAX_SCHEDULE),
}
PROGRAMME_REQUIRED = ["title", "district", "total_hours"]

_TIMESTAMPS = {
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "published_at": {"type": ["string", "null"], "format": "date-time"},
}


def _read(fields: dict[str, Any], status: dict[str, Any], nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    properties = {"id": {"type": "integer"}, "status": status}
    for name, schema in fields.items():
        properties[name] = _nullable(schema) if name in nullable else schema
    properties.update(_TIMESTAMPS)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _page(item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": item_ref}},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 1},
        },
        "required": ["items", "page", "per_page", "total", "pages"],
        "additionalProperties": False,
    }


_ORGANISATION = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    "required": ["id", "name"],
    "additionalProperties": False,
}

_REQUIREMENT = {
    "type": "object",
    "description": "A requirement of the demand and the programme text that best meets it.",
    "properties": {
        "text": {"type": "string"},
        "kind": {"type": "string", "description": "duty | requirement | skill"},
        "evidence": {"type": ["string", "null"]},
        "evidence_kind": {"type": ["string", "null"]},
        "similarity": {"type": "number"},
        "covered": {"type": "boolean"},
        "status": {
            "type": "string",
            "enum": ["covered", "partial", "uncovered"],
            "description": "partial: the best evidence is on topic without saying the same thing.",
        },
    },
    "required": ["text", "kind", "evidence", "evidence_kind", "similarity", "covered", "status"],
    "additionalProperties": False,
}


#: What ``probability`` and ``level`` mean, for the OpenAPI document.
PROBABILITY_DESCRIPTION = (
    "Calibrated probability (0-1, 4 decimals) that the pair is relevant, i.e. that the programme "
    "trains for the demand's role. Computed in the demand's own ranked list, so the same pair "
    "has the same probability from both sides (a demand's matches and a programme's matches), "
    "and probabilities are comparable across lists."
)
LEVEL_DESCRIPTION = (
    "Match level from the probability: `high`, `good` or `partial` when it reaches that level's "
    "lower bound (`level_thresholds`), `null` below `min_probability`: such a pair is not "
    "offered as a match and is returned only as one of the nearest candidates."
)
SCORE_DESCRIPTION = (
    "Raw ranker score (with priors) that orders one list; comparable only within one "
    "demand's list, not across lists or directions. Use `probability` to compare or filter."
)


def _match(partner: str, partner_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "rank": {"type": "integer", "minimum": 1, "description": "Position in this list, best first."},
            "probability": {"type": "number", "minimum": 0, "maximum": 1, "description": PROBABILITY_DESCRIPTION},
            "level": {"type": ["string", "null"], "enum": ["high", "good", "partial", None],
                      "description": LEVEL_DESCRIPTION},
            "score": {"type": "number", "description": SCORE_DESCRIPTION},
            "coverage": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": 1,
                "description": "Share of the demand's requirements (duties, requirements, skills) the "
                "programme covers; null when the demand lists none (only a title).",
            },
            "covered": {"type": "array", "items": {"$ref": "#/components/schemas/Requirement"}},
            "gaps": {"type": "array", "items": {"$ref": "#/components/schemas/Requirement"}},
            "conditions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Requirement lines no training can supply (age, experience, a "
                "licence the employee must already hold...): shown for information, never counted "
                "as gaps or in coverage.",
            },
            "contributions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"feature": {"type": "string"}, "contribution": {"type": "number"}},
                    "required": ["feature", "contribution"],
                    "additionalProperties": False,
                },
            },
            "notes": {"type": "array", "items": {"type": "string"}},
            partner: {"$ref": partner_ref},
        },
        "required": [
            "rank", "probability", "level", "score", "coverage", "covered", "gaps", "conditions",
            "contributions", "notes", partner,
        ],
        "additionalProperties": False,
    }


def _matches(subject: str, item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "The top `k` candidates as ranked (by probability, then score), including those below "
            "`min_probability` (with `level` null), so that a client can show an honest empty "
            "state (\"no match; the nearest candidates are...\"). Offer as matches only the items "
            "with a level."
        ),
        "properties": {
            subject: {"type": "integer"},
            "k": {"type": "integer", "minimum": 1, "maximum": 50},
            "min_probability": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "tau of the model in use: the lowest probability offered as a match "
                "(the lower bound of `partial`).",
            },
            "level_thresholds": {
                "type": "object",
                "description": "Lower bound of each level's probability, best first.",
                "properties": {
                    "high": {"type": "number", "minimum": 0, "maximum": 1},
                    "good": {"type": "number", "minimum": 0, "maximum": 1},
                    "partial": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["high", "good", "partial"],
                "additionalProperties": False,
            },
            "matches": {"type": "array", "items": {"$ref": item_ref}},
        },
        "required": [subject, "k", "min_probability", "level_thresholds", "matches"],
        "additionalProperties": False,
    }


ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [
                        "bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed",
                        "conflict", "payload_too_large", "unsupported_media_type", "validation_error",
                        "rate_limited", "internal_error", "http_error", "service_unavailable",
                        "read_only",
                    ],
                },
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "validation_error only: field (JSON path) -> message.",
                },
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": ERROR,
    "Module": MODULE,
    "DemandCreate": {
        "type": "object",
        "properties": DEMAND_FIELDS,
        "required": DEMAND_REQUIRED,
        "additionalProperties": False,
    },
    "DemandUpdate": {
        "type": "object",
        "description": "Only the fields given change.",
        "properties": DEMAND_FIELDS,
        "additionalProperties": False,
    },
    "Demand": _read(DEMAND_FIELDS, _codes(choices.DEMAND_STATUSES, "Status."), nullable=("skill_level",)),
    "DemandPage": _page("#/components/schemas/Demand"),
    "ProgrammeCreate": {
        "type": "object",
        "properties": PROGRAMME_FIELDS,
        "required": PROGRAMME_REQUIRED,
        "additionalProperties": False,
    },
    "ProgrammeUpdate": {
        "type": "object",
        "description": "Only the fields given change.",
        "properties": PROGRAMME_FIELDS,
        "additionalProperties": False,
    },
    "Programme": _read(PROGRAMME_FIELDS, _codes(choices.PROGRAMME_STATUSES, "Status.")),
    "ProgrammePage": _page("#/components/schemas/Programme"),
    "Organisation": _ORGANISATION,
    "Requirement": _REQUIREMENT,
    "ProgrammeSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "institution": {"$ref": "#/components/schemas/Organisation"},
            "level": PROGRAMME_FIELDS["level"],
            "certificate_kind": PROGRAMME_FIELDS["certificate_kind"],
            "certificate_name": {"type": "string"},
            "total_hours": {"type": "integer"},
            "fee": {"type": "integer"},
            "subsidy_eligible": {"type": "boolean"},
            "mode": PROGRAMME_FIELDS["mode"],
            "district": {"type": "string"},
        },
        "required": [
            "id", "title", "institution", "level", "certificate_kind", "certificate_name",
            "total_hours", "fee", "subsidy_eligible", "mode", "district",
        ],
        "additionalProperties": False,
    },
    "DemandSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "enterprise": {"$ref": "#/components/schemas/Organisation"},
            "occupation": {"type": "string"},
            "skill_level": _nullable(DEMAND_FIELDS["skill_level"]),
            "headcount": {"type": "integer"},
            "mode": DEMAND_FIELDS["mode"],
            "district": {"type": "string"},
        },
        "required": ["id", "title", "enterprise", "occupation", "skill_level", "headcount", "mode", "district"],
        "additionalProperties": False,
    },
    "ProgrammeMatch": _match("programme", "#/components/schemas/ProgrammeSummary"),
    "DemandMatch": _match("demand", "#/components/schemas/DemandSummary"),
    "ProgrammeMatches": _matches("demand_id", "#/components/schemas/ProgrammeMatch"),
    "DemandMatches": _matches("programme_id", "#/components/schemas/DemandMatch"),
}


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Problem:
    """One way an instance breaks a schema: where (a JSON path such as ``modules[0].hours``),
    which keyword, and what the schema asked for."""

    path: str
    keyword: str
    expected: Any = None


STRUCTURAL = frozenset({"type", "properties", "required", "additionalProperties", "items", "format", "$ref"})
# What a request body is checked for here. The text patterns are left to the services, which
# refuse exactly those characters (tests/test_api_openapi.py) with a message naming the field.
BODY_KEYWORDS = STRUCTURAL | {"enum", "minimum", "maximum", "minLength", "maxLength", "maxItems"}

_JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "date":
            return bool(_DATE.match(value)) and bool(date.fromisoformat(value))
        if fmt == "date-time":
            return "T" in value and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False
    return True  # formats this validator does not know are annotations only


def _range(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: schema[k] for k in ("minimum", "maximum") if k in schema}


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate(
    instance: Any,
    schema: dict[str, Any],
    root: dict[str, Any] | None = None,
    path: str = "",
    keywords: frozenset[str] | None = None,
) -> list[Problem]:
    """Problems of ``instance`` against ``schema`` (the subset of JSON Schema 2020-12 used here:
    $ref to #/components/schemas, type, properties, required, additionalProperties, items,
    enum, format date/date-time, minimum, maximum, minLength, maxLength, pattern, maxItems).

    ``keywords`` limits the check (e.g. to :data:`STRUCTURAL`); None checks them all.
    """
    root = root if root is not None else {"components": {"schemas": SCHEMAS}}

    def on(keyword: str) -> bool:
        return keyword in schema and (keywords is None or keyword in keywords)

    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return validate(instance, target, root, path, keywords)

    if on("type"):
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_JSON_TYPES[t](instance) for t in types):
            return [Problem(path, "type", types)]
    problems: list[Problem] = []
    if on("enum") and instance not in schema["enum"]:
        problems.append(Problem(path, "enum", schema["enum"]))
    if isinstance(instance, str):
        if on("format") and not _format_ok(instance, schema["format"]):
            problems.append(Problem(path, "format", schema["format"]))
        if on("maxLength") and len(instance) > schema["maxLength"]:
            problems.append(Problem(path, "maxLength", schema["maxLength"]))
        if on("minLength") and len(instance) < schema["minLength"]:
            problems.append(Problem(path, "minLength", schema["minLength"]))
        if on("pattern") and not _pattern(schema["pattern"]).search(instance):
            problems.append(Problem(path, "pattern", schema["pattern"]))
    if _JSON_TYPES["number"](instance) and instance is not None:
        if on("minimum") and instance < schema["minimum"]:
            problems.append(Problem(path, "minimum", _range(schema)))
        if on("maximum") and instance > schema["maximum"]:
            problems.append(Problem(path, "maximum", _range(schema)))
    if isinstance(instance, list):
        if on("maxItems") and len(instance) > schema["maxItems"]:
            problems.append(Problem(path, "maxItems", schema["maxItems"]))
        if on("items"):
            for index, item in enumerate(instance):
                problems += validate(item, schema["items"], root, f"{path}[{index}]", keywords)
    if isinstance(instance, dict):
        properties = schema.get("properties", {}) if on("properties") else {}
        if on("required"):
            problems += [Problem(_join(path, name), "required") for name in schema["required"] if name not in instance]
        for name, value in instance.items():
            if name in properties:
                problems += validate(value, properties[name], root, _join(path, name), keywords)
            elif on("additionalProperties"):
                extra = schema["additionalProperties"]
                if extra is False:
                    problems.append(Problem(_join(path, str(name)), "additionalProperties"))
                elif isinstance(extra, dict):
                    problems += validate(value, extra, root, _join(path, str(name)), keywords)
    return problems


def _type_message(types: list[str]) -> str:
    main = next((t for t in types if t != "null"), "null")
    nullable = "null" in types
    messages = {
        ("string", False): _("应为字符串。"),
        ("string", True): _("应为字符串或 null。"),
        ("integer", False): _("应为整数。"),
        ("integer", True): _("应为整数或 null。"),
        ("boolean", False): _("应为 true 或 false。"),
        ("array", False): _("应为数组。"),
        ("object", False): _("应为对象。"),
    }
    return messages.get((main, nullable)) or _("类型不正确。")


def _bounds(bounds: dict[str, Any]) -> str:
    if "minimum" in bounds and "maximum" in bounds:
        return _("请输入 %(low)s 到 %(high)s 之间的整数。", low=bounds["minimum"], high=bounds["maximum"])
    return _("取值不符合要求。")


def problem_messages(problems: list[Problem]) -> dict[str, str]:
    """A user-facing message per field path (the first problem of each path)."""
    fields: dict[str, str] = {}
    for problem in problems:
        if problem.path in fields:
            continue
        if problem.keyword == "type":
            message = _type_message(problem.expected)
        elif problem.keyword in ("required", "minLength"):
            message = _("此项为必填项。")
        elif problem.keyword == "maxLength":
            message = _("最多 %(n)s 个字。", n=problem.expected)
        elif problem.keyword == "maxItems":
            message = _("最多 %(n)s 项。", n=problem.expected)
        elif problem.keyword == "enum":
            message = _("请选择列表中的选项。")
        elif problem.keyword in ("minimum", "maximum"):
            message = _bounds(problem.expected)
        elif problem.keyword == "additionalProperties":
            message = _("不支持此字段（未知字段或只读字段）。")
        elif problem.keyword == "format":
            message = _("请输入有效日期。") if problem.expected == "date" else _("格式不正确。")
        else:
            message = _("取值不符合要求。")
        fields[problem.path] = message
    return fields


# --------------------------------------------------------------------------- JSON -> inputs


def _parse(body: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """The body's fields as Python values; raises :class:`BodyInvalid` on structural problems."""
    problems = validate(body, SCHEMAS[schema_name], keywords=BODY_KEYWORDS)
    if problems:
        raise BodyInvalid(problem_messages(problems))
    values = dict(body)
    if values.get("desired_start") is not None:
        values["desired_start"] = date.fromisoformat(values["desired_start"])
    return values


class BodyInvalid(Exception):
    """A request body broke its schema; ``fields`` maps paths to messages."""

    def __init__(self, fields: dict[str, str]):
        super().__init__(fields)
        self.fields = fields


def demand_input(body: dict[str, Any], current: Demand | None = None) -> DemandInput:
    """A create body (no ``current``) or a patch of ``current`` as the service's input."""
    if current is None:
        return DemandInput(**_parse(body, "DemandCreate"))
    base = DemandInput(
        title=current.title,
        district=current.district,
        skill_level=current.skill_level,
        occupation=current.occupation or "",
        description=current.description or "",
        duties=list(current.duties or []),
        requirements=list(current.requirements or []),
        skills=[s.name for s in current.skills],
        headcount=current.headcount,
        location=current.location or "",
        mode=current.mode,
        desired_start=current.desired_start,
        budget_per_person=current.budget_per_person,
    )
    return dataclasses.replace(base, **_parse(body, "DemandUpdate"))


def programme_input(body: dict[str, Any], current: Programme | None = None) -> ProgrammeInput:
    """A create body (no ``current``) or a patch of ``current`` as the service's input."""
    if current is None:
        return ProgrammeInput(**_parse(body, "ProgrammeCreate"))
    base = ProgrammeInput(
        title=current.title,
        district=current.district,
        total_hours=current.total_hours,
        level=current.level,
        description=current.description or "",
        modules=[dict(m) for m in current.modules or []],
        outcomes=list(current.outcomes or []),
        skills=[s.name for s in current.skills],
        certificate_kind=current.certificate_kind,
        certificate_name=current.certificate_name or "",
        mode=current.mode,
        location=current.location or "",
        capacity=current.capacity,
        fee=current.fee,
        subsidy_eligible=current.subsidy_eligible,
        schedule=current.schedule or "",
    )
    return dataclasses.replace(base, **_parse(body, "ProgrammeUpdate"))


# --------------------------------------------------------------------------- rows -> JSON


def _timestamps(posting: Demand | Programme) -> dict[str, Any]:
    return {
        "created_at": posting.created_at.isoformat(),
        "updated_at": posting.updated_at.isoformat(),
        "published_at": posting.published_at.isoformat() if posting.published_at else None,
    }


def demand_json(d: Demand) -> dict[str, Any]:
    return {
        "id": d.id,
        "status": d.status,
        "title": d.title,
        "occupation": d.occupation or "",
        "description": d.description or "",
        "duties": list(d.duties or []),
        "requirements": list(d.requirements or []),
        "skills": [s.name for s in d.skills],
        "skill_level": d.skill_level,
        "headcount": d.headcount,
        "district": d.district,
        "location": d.location or "",
        "mode": d.mode,
        "desired_start": d.desired_start.isoformat() if d.desired_start else None,
        "budget_per_person": d.budget_per_person,
        **_timestamps(d),
    }


def programme_json(p: Programme) -> dict[str, Any]:
    return {
        "id": p.id,
        "status": p.status,
        "title": p.title,
        "description": p.description or "",
        "modules": [{"name": m["name"], "hours": m["hours"]} for m in p.modules or []],
        "outcomes": list(p.outcomes or []),
        "skills": [s.name for s in p.skills],
        "level": p.level,
        "certificate_kind": p.certificate_kind,
        "certificate_name": p.certificate_name or "",
        "total_hours": p.total_hours,
        "mode": p.mode,
        "district": p.district,
        "location": p.location or "",
        "capacity": p.capacity,
        "fee": p.fee,
        "subsidy_eligible": bool(p.subsidy_eligible),
        "schedule": p.schedule or "",
        **_timestamps(p),
    }


def _organisation(o: Organisation) -> dict[str, Any]:
    return {"id": o.id, "name": o.name}


def programme_summary(p: Programme) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "institution": _organisation(p.organisation),
        "level": p.level,
        "certificate_kind": p.certificate_kind,
        "certificate_name": p.certificate_name or "",
        "total_hours": p.total_hours,
        "fee": p.fee,
        "subsidy_eligible": bool(p.subsidy_eligible),
        "mode": p.mode,
        "district": p.district,
    }


def demand_summary(d: Demand) -> dict[str, Any]:
    return {
        "id": d.id,
        "title": d.title,
        "enterprise": _organisation(d.organisation),
        "occupation": d.occupation or "",
        "skill_level": d.skill_level,
        "headcount": d.headcount,
        "mode": d.mode,
        "district": d.district,
    }


def _plain(value: Any) -> Any:
    # The engine's numbers may be numpy scalars, which JSON does not know.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, (bool, str, int)) or value is None:
        return value
    if isinstance(value, Real):
        return float(value)
    return value


def match_json(
    recommendation: Recommendation, partner: str
) -> dict[str, Any]:
    """A ranked match with its explanation and the other side's summary."""
    # The engine reads the level from the rounded probability, so the two agree as sent.
    body = _plain(recommendation.as_dict())
    if partner == "programme":
        body["programme"] = programme_summary(recommendation.programme)
    else:
        body["demand"] = demand_summary(recommendation.demand)
    return body


def matches_json(
    subject: str,
    subject_id: int,
    k: int,
    recommendations: list[Recommendation],
    partner: str,
    thresholds: dict[str, float],
) -> dict[str, Any]:
    """A matches answer: the top ``k`` as ranked (below-tau ones with ``level`` null), tau and
    the level thresholds of the model in use (the lowest level's bound is tau)."""
    thresholds = {name: float(bound) for name, bound in thresholds.items()}
    return {
        subject: subject_id,
        "k": k,
        "min_probability": thresholds["partial"],
        "level_thresholds": thresholds,
        "matches": [match_json(r, partner) for r in recommendations],
    }
