"""Forms of the association staff pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, TextAreaField
from wtforms.validators import Length, Optional

from ..forms import CleanForm
from .services import MAX_REASON_LENGTH


class ChineseDateField(DateField):
    """A date field whose parse error speaks Chinese (WTForms' own message is English)."""

    def process_formdata(self, valuelist) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(_l("请输入有效的日期，格式为 年-月-日（如 2024-05-01）。")) from None


class DecisionForm(CleanForm):
    reason = TextAreaField(
        _l("理由"),
        validators=[
            Length(
                max=MAX_REASON_LENGTH,
                message=_l("理由不能超过 %(n)s 个字符。", n=MAX_REASON_LENGTH),
            )
        ],
    )


class MembershipForm(CleanForm):
    member_since = ChineseDateField(_l("入会日期"), validators=[Optional()])
    founding_member = BooleanField(_l("创始会员"))
