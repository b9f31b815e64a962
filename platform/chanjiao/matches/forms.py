"""Forms of interest requests (申请对接) and their decisions."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..forms import CleanForm
from .services import MAX_MESSAGE, MAX_RESPONSE


def _to_int(value):
    """Coerce a submitted id; anything that is not a plain integer becomes 0 (no such row)."""
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 12 else 0


class InterestForm(CleanForm):
    """申请对接: the pair and an optional message. The page renders the actor's own side as a
    choice and the other side as a hidden field."""

    demand_id = SelectField(_l("需求"), coerce=_to_int, validate_choice=False,
                            validators=[InputRequired(message=_l("请选择需求。"))])
    programme_id = SelectField(_l("培训项目"), coerce=_to_int, validate_choice=False,
                               validators=[InputRequired(message=_l("请选择培训项目。"))])
    message = TextAreaField(
        _l("留言（可选）"),
        validators=[Optional(), Length(max=MAX_MESSAGE, message=_l("最多 %(n)s 个字。", n=MAX_MESSAGE))],
    )
    next = HiddenField()


class DecisionForm(CleanForm):
    """Accept or decline, with an optional reply or reason."""

    response = TextAreaField(
        _l("回复或理由（可选）"),
        validators=[Optional(), Length(max=MAX_RESPONSE, message=_l("最多 %(n)s 个字。", n=MAX_RESPONSE))],
    )


class ActionForm(CleanForm):
    """A bare CSRF-protected button (withdraw, mark read)."""
