"""Forms of the postings blueprint. Every message is Chinese and names the field's problem.

Fields parse free text into Python values (lists of lines, tag names, modules with hours);
the services check the same limits again.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from .. import choices
from ..forms import CleanForm
from ..skills import MAX_SKILL_LENGTH, normalise_skill_name
from . import services as s

TAG_SEPARATORS = re.compile(r"[,，、;；\n\r]+")
MODULE_SEPARATOR = re.compile(r"\s*[|｜]\s*")
HOURS_SUFFIX = re.compile(r"\s*(学时|课时|小时|h|H)$")


def split_tags(text: str) -> list[str]:
    """Tag names from text separated by commas (half/full width), 顿号, semicolons or lines."""
    out: list[str] = []
    for part in TAG_SEPARATORS.split(text or ""):
        name = normalise_skill_name(part)
        if name and name not in out:
            out.append(name)
    return out


class ChoiceField(SelectField):
    """A select whose refusal of an unknown code is a Chinese message, not WTForms' English."""

    def __init__(self, label=None, validators=None, invalid_message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.invalid_message = invalid_message or _l("请选择列表中的选项。")

    def pre_validate(self, form) -> None:
        if self.data in ("", None):
            return  # a required-validator (if any) names the missing choice
        valid = {str(value) for value, *_rest in self.iter_choices()}
        if self.data not in valid:
            raise ValidationError(self.invalid_message)


class WholeNumberField(IntegerField):
    """An integer input; text that is not a whole number gets a Chinese message."""

    def __init__(self, label=None, validators=None, invalid_message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.invalid_message = invalid_message or _l("请输入整数（不带小数点和单位）。")

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0]).strip().replace(",", "")
        if raw == "":
            self.data = None
            return
        try:
            if len(raw) > 12:
                raise ValueError(raw)
            self.data = int(raw)
        except ValueError:
            self.data = None
            raise ValueError(str(self.invalid_message)) from None

    def pre_validate(self, form) -> None:
        if self.process_errors:
            raise StopValidation()  # one message: "not a number", not also "out of range"


class ChineseDateField(DateField):
    """A date input (YYYY-MM-DD) with a Chinese message and a sane year range."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        raw = str(valuelist[0]).strip()
        if raw == "":
            self.data = None
            return
        try:
            value = datetime.strptime(raw, "%Y-%m-%d").date()
        except ValueError:
            self.data = None
            raise ValueError(str(_l("请输入有效日期，格式为 年-月-日（如 2026-09-01）。"))) from None
        if not date(2000, 1, 1) <= value <= date(2100, 12, 31):
            self.data = None
            raise ValueError(str(_l("日期超出合理范围。")))
        self.data = value

    def pre_validate(self, form) -> None:
        if self.process_errors:
            raise StopValidation()


class LinesField(TextAreaField):
    """One item per line; blank lines are dropped. ``data`` is a list of strings."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = [line.strip() for line in str(valuelist[0]).splitlines() if line.strip()]

    def process_data(self, value) -> None:
        self.data = list(value or [])

    def _value(self) -> str:
        return "\n".join(self.data or [])

    def pre_validate(self, form) -> None:
        lines = self.data or []
        if len(lines) > s.MAX_LINES:
            raise ValidationError(_l("最多 %(n)s 行（当前 %(count)s 行）。", n=s.MAX_LINES, count=len(lines)))
        for number, line in enumerate(lines, 1):
            if len(line) > s.MAX_LINE:
                raise ValidationError(
                    _l("第 %(line)s 行过长（每行最多 %(n)s 个字）。", line=number, n=s.MAX_LINE)
                )


class TagsField(StringField):
    """Skill tags separated by commas, 顿号 or new lines. ``data`` is a list of names.

    Rendered with a ``<datalist>`` hook that static/js/skills.js fills from /skills/suggest.
    """

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("render_kw", {"list": "skill-suggestions", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)

    def __call__(self, **kwargs):
        from flask import url_for

        kwargs.setdefault("data-skill-suggest", url_for("postings.skill_suggest"))
        return super().__call__(**kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            self.data = split_tags(str(valuelist[0]))

    def process_data(self, value) -> None:
        self.data = [getattr(v, "name", v) for v in (value or [])]

    def _value(self) -> str:
        return "、".join(self.data or [])

    def pre_validate(self, form) -> None:
        tags = self.data or []
        if len(tags) > s.MAX_SKILLS:
            raise ValidationError(
                _l("技能标签最多 %(n)s 个（当前 %(count)s 个）。", n=s.MAX_SKILLS, count=len(tags))
            )
        for name in tags:
            if len(name) > MAX_SKILL_LENGTH:
                raise ValidationError(
                    _l("技能“%(name)s…”过长（每个最多 %(n)s 个字）。", name=name[:10], n=MAX_SKILL_LENGTH)
                )


class ModulesField(TextAreaField):
    """Course modules, one per line as ``模块名称 | 学时``. ``data`` is ``[{"name", "hours"}]``."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        self.raw_lines = [line.strip() for line in str(valuelist[0]).splitlines() if line.strip()]
        self.data = []
        self.line_error = None
        for number, line in enumerate(self.raw_lines, 1):
            parts = MODULE_SEPARATOR.split(line)
            hours_text = HOURS_SUFFIX.sub("", parts[-1]) if len(parts) == 2 else ""
            name = parts[0].strip() if len(parts) == 2 else ""
            shown = line if len(line) <= 30 else line[:30] + "…"
            if len(parts) != 2 or not name or not hours_text.isdigit():
                self.line_error = _l(
                    "第 %(line)s 行“%(text)s”格式不正确，应为“模块名称 | 学时”，如“高压安全 | 16”。",
                    line=number, text=shown,
                )
                break
            hours = int(hours_text)
            if len(name) > s.MAX_LINE:
                self.line_error = _l("第 %(line)s 行的模块名称过长（最多 %(n)s 个字）。", line=number, n=s.MAX_LINE)
                break
            if not 1 <= hours <= s.MAX_MODULE_HOURS:
                self.line_error = _l(
                    "第 %(line)s 行“%(text)s”的学时应为 1 到 %(n)s 之间的整数。",
                    line=number, text=shown, n=s.MAX_MODULE_HOURS,
                )
                break
            self.data.append({"name": name, "hours": hours})

    def process_data(self, value) -> None:
        self.data = list(value or [])

    def _value(self) -> str:
        if getattr(self, "raw_lines", None) is not None and getattr(self, "line_error", None):
            return "\n".join(self.raw_lines)
        return "\n".join(f"{m.get('name', '')} | {m.get('hours', '')}" for m in self.data or [])

    def pre_validate(self, form) -> None:
        if getattr(self, "line_error", None):
            raise ValidationError(self.line_error)
        if len(self.data or []) > s.MAX_LINES:
            raise ValidationError(_l("最多 %(n)s 个课程模块。", n=s.MAX_LINES))



def _required(message=None):
    return InputRequired(message or _l("此项为必填项。"))


def _max(n: int):
    return Length(max=n, message=_l("最多 %(n)s 个字。", n=n))


def _choices(vocabulary: dict, blank: str | None = None) -> list[tuple[str, str]]:
    options = [(code, text) for code, text in vocabulary.items()]
    return ([("", blank)] if blank is not None else []) + options


def _district_choices(blank: str | None = None) -> list[tuple[str, str]]:
    return ([("", blank)] if blank is not None else []) + [(a, a) for a in choices.CHAOYANG_AREAS]


class DemandForm(CleanForm):
    title = StringField(_l("岗位名称"), validators=[_required(_l("请填写岗位名称。")), _max(s.MAX_TITLE)])
    occupation = StringField(_l("职业（工种）"), validators=[Optional(), _max(s.MAX_OCCUPATION)])
    description = TextAreaField(_l("需求说明"), validators=[Optional(), _max(s.MAX_DESCRIPTION)])
    duties = LinesField(_l("岗位职责"))
    requirements = LinesField(_l("任职要求"))
    skills = TagsField(_l("所需技能"))
    skill_level = ChoiceField(
        _l("技能等级"),
        validators=[_required(_l("请选择技能等级。"))],
        invalid_message=_l("请选择列表中的技能等级。"),
    )
    headcount = WholeNumberField(
        _l("需求人数"),
        validators=[
            _required(_l("请填写需求人数。")),
            NumberRange(min=1, max=s.MAX_HEADCOUNT, message=_l("人数应为 1 到 %(n)s 之间的整数。", n=s.MAX_HEADCOUNT)),
        ],
    )
    district = ChoiceField(
        _l("所在街道/地区"),
        validators=[_required(_l("请选择所在街道或地区。"))],
        invalid_message=_l("请选择朝阳区的街道或地区。"),
    )
    location = StringField(_l("培训/工作地点"), validators=[Optional(), _max(s.MAX_LOCATION)])
    mode = ChoiceField(
        _l("培训方式"),
        validators=[_required(_l("请选择培训方式。"))],
        invalid_message=_l("请选择列表中的培训方式。"),
    )
    desired_start = ChineseDateField(_l("期望开始日期"), validators=[Optional()])
    budget_per_person = WholeNumberField(
        _l("人均预算（元）"),
        validators=[
            Optional(),
            NumberRange(min=0, max=s.MAX_BUDGET, message=_l("预算应为 0 到 %(n)s 元之间的整数。", n=s.MAX_BUDGET)),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skill_level.choices = _choices(choices.SKILL_LEVELS, str(_l("请选择")))
        self.district.choices = _district_choices(str(_l("请选择")))
        self.mode.choices = _choices(choices.TRAINING_MODES)

    def to_input(self) -> s.DemandInput:
        return s.DemandInput(
            title=self.title.data or "",
            occupation=self.occupation.data or "",
            description=self.description.data or "",
            duties=self.duties.data or [],
            requirements=self.requirements.data or [],
            skills=self.skills.data or [],
            skill_level=self.skill_level.data or None,
            headcount=self.headcount.data,
            district=self.district.data or "",
            location=self.location.data or "",
            mode=self.mode.data or "",
            desired_start=self.desired_start.data,
            budget_per_person=self.budget_per_person.data,
        )


class ProgrammeForm(CleanForm):
    title = StringField(_l("项目名称"), validators=[_required(_l("请填写项目名称。")), _max(s.MAX_TITLE)])
    description = TextAreaField(_l("项目简介"), validators=[Optional(), _max(s.MAX_DESCRIPTION)])
    modules = ModulesField(_l("课程模块"))
    outcomes = LinesField(_l("学习成果"))
    skills = TagsField(_l("培训技能"))
    level = ChoiceField(_l("培训等级"), invalid_message=_l("请选择列表中的等级。"))
    certificate_kind = ChoiceField(
        _l("证书类型"),
        validators=[_required(_l("请选择证书类型。"))],
        invalid_message=_l("请选择列表中的证书类型。"),
    )
    certificate_name = StringField(_l("证书名称"), validators=[_max(s.MAX_CERTIFICATE_NAME)])
    total_hours = WholeNumberField(
        _l("总学时"),
        validators=[
            _required(_l("请填写总学时。")),
            NumberRange(min=1, max=s.MAX_TOTAL_HOURS, message=_l("总学时应为 1 到 %(n)s 之间的整数。", n=s.MAX_TOTAL_HOURS)),
        ],
    )
    mode = ChoiceField(
        _l("培训方式"),
        validators=[_required(_l("请选择培训方式。"))],
        invalid_message=_l("请选择列表中的培训方式。"),
    )
    district = ChoiceField(
        _l("所在街道/地区"),
        validators=[_required(_l("请选择所在街道或地区。"))],
        invalid_message=_l("请选择朝阳区的街道或地区。"),
    )
    location = StringField(_l("上课地点"), validators=[Optional(), _max(s.MAX_LOCATION)])
    capacity = WholeNumberField(
        _l("招生人数"),
        validators=[
            _required(_l("请填写招生人数。")),
            NumberRange(min=1, max=s.MAX_CAPACITY, message=_l("招生人数应为 1 到 %(n)s 之间的整数。", n=s.MAX_CAPACITY)),
        ],
    )
    fee = WholeNumberField(
        _l("培训费用（元/人）"),
        validators=[
            _required(_l("请填写培训费用（免费填 0）。")),
            NumberRange(min=0, max=s.MAX_FEE, message=_l("费用应为 0 到 %(n)s 元之间的整数。", n=s.MAX_FEE)),
        ],
    )
    subsidy_eligible = BooleanField(_l("可申请政府补贴性培训"))
    schedule = StringField(_l("开班安排"), validators=[Optional(), _max(s.MAX_SCHEDULE)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.level.choices = _choices(choices.SKILL_LEVELS, str(_l("不定级")))
        self.certificate_kind.choices = _choices(choices.CERTIFICATE_KINDS)
        self.mode.choices = _choices(choices.TRAINING_MODES)
        self.district.choices = _district_choices(str(_l("请选择")))

    def validate_certificate_name(self, field) -> None:
        if self.certificate_kind.data not in ("", "none", None) and not (field.data or "").strip():
            raise ValidationError(_l("有证书时请填写证书名称。"))

    def validate_total_hours(self, field) -> None:
        module_hours = sum(m["hours"] for m in self.modules.data or [])
        if field.data is not None and not getattr(self.modules, "line_error", None) and module_hours > field.data:
            raise ValidationError(
                _l("总学时（%(total)s）不能少于各模块学时之和（%(sum)s）。", total=field.data, sum=module_hours)
            )

    def to_input(self) -> s.ProgrammeInput:
        return s.ProgrammeInput(
            title=self.title.data or "",
            description=self.description.data or "",
            modules=self.modules.data or [],
            outcomes=self.outcomes.data or [],
            skills=self.skills.data or [],
            level=self.level.data or None,
            certificate_kind=self.certificate_kind.data or "",
            certificate_name=self.certificate_name.data or "",
            total_hours=self.total_hours.data,
            mode=self.mode.data or "",
            district=self.district.data or "",
            location=self.location.data or "",
            capacity=self.capacity.data,
            fee=self.fee.data,
            subsidy_eligible=bool(self.subsidy_eligible.data),
            schedule=self.schedule.data or "",
        )


class SynonymsForm(CleanForm):
    synonyms = TextAreaField(_l("同义词"), validators=[Optional(), _max(3000)])


class MergeForm(CleanForm):
    source = StringField(_l("要合并的标签"), validators=[_required(_l("请填写要合并的标签。")), _max(MAX_SKILL_LENGTH)])
    target = StringField(_l("并入标签"), validators=[_required(_l("请填写要并入的标签。")), _max(MAX_SKILL_LENGTH)])
