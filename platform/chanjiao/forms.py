"""Form base shared by every blueprint."""
from __future__ import annotations

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from .common import clean_text


class CleanForm(FlaskForm):
    """A form whose submitted text loses control characters before anything reads it."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            data = super().wrap_formdata(form, formdata)
            if data is None:
                return None
            return MultiDict(
                (key, clean_text(value) if isinstance(value, str) else value)
                for key, value in data.items(multi=True)
            )
