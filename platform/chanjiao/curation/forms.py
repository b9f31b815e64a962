"""Forms of the curation queue, the staff platform pages and the public objection form."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..forms import CleanForm
from ..platforms import services as platforms
from ..postings.forms import ChineseDateField, WholeNumberField
from .services import MAX_REASON_LENGTH


def _required():
    return InputRequired(message=_l("此项为必填项。"))


def _max(n: int):
    return Length(max=n, message=_l("最多 %(n)s 个字。", n=n))


class ReasonForm(CleanForm):
    """A decision with an optional or required reason (the service decides which)."""

    reason = TextAreaField(_l("理由"), validators=[_max(MAX_REASON_LENGTH)])


class PairingCreateForm(CleanForm):
    demand_id = WholeNumberField(_l("需求编号"), validators=[_required()])
    programme_id = WholeNumberField(_l("培训项目编号"), validators=[_required()])


class CheckboxesField(SelectMultipleField):
    """Checkboxes; unknown values are left for the service to refuse in Chinese."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validate_choice", False)
        kwargs.setdefault("coerce", str)
        super().__init__(*args, **kwargs)


class PlatformForm(CleanForm):
    name = StringField(_l("平台名称"), validators=[_required(), _max(platforms.MAX_NAME)])
    description = TextAreaField(_l("简介"), validators=[_max(platforms.MAX_DESCRIPTION)])
    goal_trainees = WholeNumberField(
        _l("培训人数目标"),
        default=0,
        validators=[
            Optional(),
            NumberRange(min=0, max=platforms.MAX_GOAL,
                        message=_l("培训人数目标应为 0 到 %(n)s 之间的整数。", n=platforms.MAX_GOAL)),
        ],
    )
    period_start = ChineseDateField(_l("开始日期"), validators=[Optional()])
    period_end = ChineseDateField(_l("结束日期"), validators=[Optional()])
    notice_days = WholeNumberField(
        _l("公示天数"),
        default=7,
        validators=[
            _required(),
            NumberRange(min=0, max=platforms.MAX_NOTICE_DAYS,
                        message=_l("公示天数应为 0 到 %(n)s 之间的整数。", n=platforms.MAX_NOTICE_DAYS)),
        ],
    )
    pairing_ids = CheckboxesField(_l("纳入的对接（已通过）"))


class OutcomesForm(CleanForm):
    enrolled = WholeNumberField(
        _l("参训人数"),
        validators=[_required(), NumberRange(min=0, max=10_000_000, message=_l("人数应为不小于 0 的整数。"))],
    )
    certified = WholeNumberField(
        _l("取证人数"),
        validators=[_required(), NumberRange(min=0, max=10_000_000, message=_l("人数应为不小于 0 的整数。"))],
    )
    hired = WholeNumberField(
        _l("就业人数"),
        validators=[_required(), NumberRange(min=0, max=10_000_000, message=_l("人数应为不小于 0 的整数。"))],
    )
    reason = TextAreaField(_l("说明（可选）"), validators=[_max(MAX_REASON_LENGTH)])


class ObjectionForm(CleanForm):
    name = StringField(_l("姓名"), validators=[_required(), _max(platforms.MAX_OBJECTION_NAME)])
    contact = StringField(
        _l("联系方式（电话或邮箱）"), validators=[_required(), _max(platforms.MAX_OBJECTION_CONTACT)]
    )
    text = TextAreaField(
        _l("异议内容"),
        validators=[
            _required(),
            Length(
                min=platforms.MIN_OBJECTION_TEXT,
                max=platforms.MAX_OBJECTION_TEXT,
                message=_l("异议内容应为 %(low)s 到 %(high)s 个字。",
                           low=platforms.MIN_OBJECTION_TEXT, high=platforms.MAX_OBJECTION_TEXT),
            ),
        ],
    )
