"""ORM models, one module per aggregate. Importing this package registers them all."""
from .accounts import Invitation, LoginThrottle, Organisation, PasswordResetToken, User
from .audit import AuditLog
from .postings import Demand, Programme, SearchTerm, Skill, demand_skills, programme_skills

__all__ = [
    "AuditLog",
    "Demand",
    "Invitation",
    "LoginThrottle",
    "Organisation",
    "PasswordResetToken",
    "Programme",
    "SearchTerm",
    "Skill",
    "User",
    "demand_skills",
    "programme_skills",
]
