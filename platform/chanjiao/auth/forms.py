"""Forms of the auth blueprint (login, registration, invitations, password resets) and the
validators that the organisation and staff forms share."""
from __future__ import annotations

import re
from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from .. import choices
from ..errors import DomainError
from ..forms import CleanForm
from ..validators import credit_code_problem, is_valid_phone, normalise_credit_code
from .services import check_password_strength

EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_DESCRIPTION = 5000



def strip(value):
    return value.strip() if isinstance(value, str) else value


def add_domain_error(form: FlaskForm, error: DomainError) -> None:
    """Show a service's error next to the field it names, or above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if isinstance(field, Field):
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


class OneOf:
    """Like ``AnyOf`` but with our own message, for selects whose built-in check is off.

    WTForms' built-in choice check answers in English; ours speaks Chinese and also catches
    values posted directly that the form never offered.
    """

    def __init__(self, values: Iterable[str], message):
        self.values = set(values)
        self.message = message

    def __call__(self, form, field) -> None:
        if field.data not in self.values:
            raise ValidationError(self.message)


def valid_phone(form, field) -> None:
    if field.data and not is_valid_phone(field.data):
        raise ValidationError(_l("请输入有效的手机号（11 位）或固定电话（如 010-65001234）。"))


def valid_email(form, field) -> None:
    if field.data and not EMAIL_SHAPE.match(field.data):
        raise ValidationError(_l("请输入有效的电子邮箱地址。"))


def valid_credit_code(form, field) -> None:
    if not field.data:
        return
    field.data = normalise_credit_code(field.data)
    problem = credit_code_problem(field.data)
    if problem == "length":
        raise ValidationError(_l("统一社会信用代码应为 18 位。"))
    if problem == "chars":
        raise ValidationError(
            _l("统一社会信用代码含有无效字符（只允许数字和除 I、O、S、V、Z 以外的大写字母）。")
        )
    if problem == "check":
        raise ValidationError(_l("统一社会信用代码校验位不正确，请核对后重新输入。"))


def strong_password(form, field) -> None:
    if not field.data:
        return
    try:
        check_password_strength(field.data)
    except DomainError as error:
        raise ValidationError(error.message) from None


try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms import SelectChoice as _Choice
except ImportError:  # pragma: no cover - older WTForms
    def _Choice(value, label):  # type: ignore[no-redef]
        return (value, label)


def options(pairs: Iterable[tuple[str, object]]) -> list:
    """Select options from ``(code, label)`` pairs, in the form this WTForms wants."""
    return [_Choice(code, text) for code, text in pairs]


def _placeholder(vocabulary: dict) -> list:
    return options([("", _l("请选择")), *vocabulary.items()])


class LoginForm(CleanForm):
    email = EmailField(
        _l("电子邮箱"),
        validators=[DataRequired(_l("请输入电子邮箱。")), Length(max=254, message=_l("邮箱过长。"))],
    )
    password = PasswordField(
        _l("密码"),
        validators=[DataRequired(_l("请输入密码。")), Length(max=200, message=_l("密码过长。"))],
    )


class ForgotPasswordForm(CleanForm):
    email = EmailField(
        _l("注册时使用的电子邮箱"),
        validators=[DataRequired(_l("请输入电子邮箱。")), Length(max=254, message=_l("邮箱过长。"))],
    )


class ConfirmForm(CleanForm):
    """Only the CSRF token: confirming is a POST, so a mail scanner opening the link changes
    nothing and logs nobody in."""


class AccountFields(CleanForm):
    """A new user's name, e-mail address and password (twice)."""

    user_name = StringField(
        _l("您的姓名"),
        filters=[strip],
        validators=[
            DataRequired(_l("请输入您的姓名。")),
            Length(max=50, message=_l("姓名不能超过 50 个字符。")),
        ],
    )
    email = EmailField(
        _l("电子邮箱（登录账号）"),
        filters=[strip],
        validators=[
            DataRequired(_l("请输入电子邮箱。")),
            Length(max=254, message=_l("邮箱不能超过 254 个字符。")),
            valid_email,
        ],
    )
    password = PasswordField(
        _l("密码"),
        validators=[
            DataRequired(_l("请设置密码。")),
            Length(max=200, message=_l("密码不能超过 200 个字符。")),
            strong_password,
        ],
    )
    password_confirm = PasswordField(
        _l("确认密码"),
        validators=[
            DataRequired(_l("请再次输入密码。")),
            EqualTo("password", message=_l("两次输入的密码不一致。")),
        ],
    )


class OrganisationFields(CleanForm):
    """The organisation details that registration asks for and the profile page edits."""

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


class RegistrationForm(AccountFields, OrganisationFields):
    kind = RadioField(
        _l("机构类型"),
        choices=options(choices.ORG_KINDS.items()),
        validate_choice=False,
        validators=[
            DataRequired(_l("请选择机构类型：企业或培训机构。")),
            OneOf(choices.ORG_KINDS, _l("请选择机构类型：企业或培训机构。")),
        ],
    )
    district = SelectField(
        _l("所在街道/地区"),
        choices=_placeholder(choices.DISTRICTS),
        validate_choice=False,
        validators=[
            DataRequired(_l("请选择所在街道/地区。")),
            OneOf(choices.DISTRICTS, _l("请从列表中选择朝阳区的街道/地区。")),
        ],
    )
    industry = SelectField(
        _l("所属行业（企业填写）"), choices=_placeholder(choices.INDUSTRIES), validate_choice=False
    )
    category = SelectField(
        _l("机构类别（培训机构填写）"),
        choices=_placeholder(choices.INSTITUTION_CATEGORIES),
        validate_choice=False,
    )
    def validate_industry(self, field) -> None:
        if self.kind.data != "enterprise":
            return
        if not field.data:
            raise ValidationError(_l("企业请选择所属行业。"))
        if field.data not in choices.INDUSTRIES:
            raise ValidationError(_l("请从列表中选择所属行业。"))

    def validate_category(self, field) -> None:
        if self.kind.data != "institution":
            return
        if not field.data:
            raise ValidationError(_l("培训机构请选择机构类别。"))
        if field.data not in choices.INSTITUTION_CATEGORIES:
            raise ValidationError(_l("请从列表中选择机构类别。"))


class InvitationAcceptForm(AccountFields):
    """An invited colleague creates their account."""


class NewPasswordForm(CleanForm):
    password = PasswordField(
        _l("新密码"),
        validators=[
            DataRequired(_l("请设置新密码。")),
            Length(max=200, message=_l("密码不能超过 200 个字符。")),
            strong_password,
        ],
    )
    password_confirm = PasswordField(
        _l("确认新密码"),
        validators=[
            DataRequired(_l("请再次输入新密码。")),
            EqualTo("password", message=_l("两次输入的密码不一致。")),
        ],
    )
