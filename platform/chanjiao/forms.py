"""Form base shared by every blueprint."""
from __future__ import annotations

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from .common import ZERO_WIDTH, control_characters_message, forbidden_characters


class CleanForm(FlaskForm):
    """A form whose submitted text loses zero-width characters before anything reads it, and
    which refuses control and format characters (bidi overrides among them) next to the field
    that holds them, instead of storing or silently changing them."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            data = super().wrap_formdata(form, formdata)
            if data is None:
                return None
            return MultiDict(
                (key, value.translate(ZERO_WIDTH) if isinstance(value, str) else value)
                for key, value in data.items(multi=True)
            )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if field.type in ("CSRFTokenField", "HiddenField"):
                continue
            texts = field.data if isinstance(field.data, list | tuple) else [field.data]
            codes = [
                code for text in texts if isinstance(text, str)
                for code in forbidden_characters(text)
            ]
            codes = list(dict.fromkeys(codes))
            if codes:
                field.errors = [*field.errors, control_characters_message(field.label.text, codes)]
                valid = False
        return valid
