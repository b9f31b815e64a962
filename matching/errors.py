"""Errors raised by the matching library."""
from __future__ import annotations


class MatchingError(Exception):
    """Base class of every error the matching library raises on purpose."""


class InputError(MatchingError, ValueError):
    """Bad input: the message names the offending record, line or field."""


class EncoderUnavailable(MatchingError, RuntimeError):
    """An encoder cannot run here (missing CPU feature, package or model files)."""
