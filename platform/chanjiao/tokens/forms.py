"""Forms of the tokens blueprint."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from ..forms import CleanForm
from .services import MAX_NAME


class TokenForm(CleanForm):
    name = StringField(
        _l("令牌名称"),
        validators=[
            InputRequired(message=_l("此项为必填项。")),
            Length(max=MAX_NAME, message=_l("最多 %(max)d 个字。")),
        ],
    )
