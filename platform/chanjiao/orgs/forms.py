"""Forms of the organisation pages: profile, invitations and member management."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from .. import choices
from ..forms import CleanForm
from ..auth.forms import (
    MAX_DESCRIPTION,
    OneOf,
    options,
    strip,
    valid_credit_code,
    valid_email,
    valid_phone,
)

ROLE_CHOICES = options((role, choices.ROLES[role]) for role in choices.ORG_ROLES)


class ActionForm(CleanForm):
    """A button that changes state: nothing to fill in, but the CSRF token is checked."""


class ProfileForm(CleanForm):
    # name and credit_code are removed by the view once the organisation has been approved.
    name = StringField(
        _l("机构名称"),
        filters=[strip],
        validators=[
            DataRequired(_l("请输入机构名称。")),
            Length(max=100, message=_l("机构名称不能超过 100 个字符。")),
        ],
    )
    credit_code = StringField(
        _l("统一社会信用代码"),
        filters=[strip],
        validators=[DataRequired(_l("请输入统一社会信用代码。")), valid_credit_code],
    )
    contact_name = StringField(
        _l("联系人"),
        filters=[strip],
        validators=[
            DataRequired(_l("请输入联系人姓名。")),
            Length(max=50, message=_l("联系人姓名不能超过 50 个字符。")),
        ],
    )
    contact_phone = TelField(
        _l("联系电话"),
        filters=[strip],
        validators=[
            DataRequired(_l("请输入联系电话。")),
            Length(max=30, message=_l("联系电话不能超过 30 个字符。")),
            valid_phone,
        ],
    )
    address = StringField(
        _l("详细地址"),
        filters=[strip],
        validators=[
            DataRequired(_l("请输入详细地址。")),
            Length(max=200, message=_l("地址不能超过 200 个字符。")),
        ],
    )
    description = TextAreaField(
        _l("机构简介"),
        validators=[
            Optional(),
            Length(max=MAX_DESCRIPTION, message=_l("简介不能超过 %(n)s 个字符。", n=MAX_DESCRIPTION)),
        ],
    )


class InvitationForm(CleanForm):
    email = EmailField(
        _l("限定邮箱（可选）"),
        filters=[strip],
        validators=[
            Optional(),
            Length(max=254, message=_l("邮箱不能超过 254 个字符。")),
            valid_email,
        ],
    )
    role = SelectField(
        _l("角色"),
        choices=ROLE_CHOICES,
        default="org_member",
        validate_choice=False,
        validators=[OneOf(choices.ORG_ROLES, _l("请选择有效的角色。"))],
    )


class RoleForm(CleanForm):
    role = SelectField(
        _l("角色"),
        choices=ROLE_CHOICES,
        validate_choice=False,
        validators=[OneOf(choices.ORG_ROLES, _l("请选择有效的角色。"))],
    )
