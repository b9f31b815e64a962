"""Forms of the organisation pages: profile, invitations and member management."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, SelectField
from wtforms.validators import Length, Optional

from .. import choices
from ..auth.forms import OneOf, OrganisationFields, options, strip, valid_email
from ..forms import CleanForm

ROLE_CHOICES = options((role, choices.ROLES[role]) for role in choices.ORG_ROLES)


class ActionForm(CleanForm):
    """A button that changes state: nothing to fill in, but the CSRF token is checked."""


class ProfileForm(OrganisationFields):
    """The organisation's own details; the view drops name and credit code once approved."""


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
