"""ORM models, one module per aggregate. Importing this package registers them all."""
from .accounts import Invitation, LoginThrottle, Organisation, PasswordResetToken, User
from .alerts import MatchAlert, MatchAlertDelivery
from .api import ApiToken
from .audit import AuditLog
from .curation import (
    DemoPlatform,
    DemoPlatformPairing,
    DemoPlatformParticipant,
    InterestRequest,
    Objection,
    Pairing,
)
from .jobs import CatalogueChange, JobLease, OutboxMessage, ScheduledRun
from .matching import RankerVersion, TextVector
from .notifications import Notification
from .postings import Demand, Programme, SearchTerm, Skill, demand_skills, programme_skills
from .two_factor import RecoveryCode, TwoFactorCredential

__all__ = [
    "ApiToken",
    "AuditLog",
    "CatalogueChange",
    "Demand",
    "DemoPlatform",
    "DemoPlatformPairing",
    "DemoPlatformParticipant",
    "Invitation",
    "JobLease",
    "InterestRequest",
    "LoginThrottle",
    "MatchAlert",
    "MatchAlertDelivery",
    "Notification",
    "Objection",
    "Organisation",
    "OutboxMessage",
    "Pairing",
    "PasswordResetToken",
    "Programme",
    "RankerVersion",
    "RecoveryCode",
    "ScheduledRun",
    "SearchTerm",
    "Skill",
    "TextVector",
    "TwoFactorCredential",
    "User",
    "demand_skills",
    "programme_skills",
]
