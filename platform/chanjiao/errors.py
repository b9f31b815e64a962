"""Domain errors raised by services; views map them to form errors, flashes or HTTP codes."""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the platform refused the operation. ``message`` is user-facing (translated)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    """Input broke a rule that the form could not check by itself."""


class PermissionDenied(DomainError):
    """The actor may not do this to this object."""


class NotFound(DomainError):
    """No such object, or one the actor may not know exists."""


class InvalidTransition(DomainError):
    """The object's current status does not allow the requested change."""
