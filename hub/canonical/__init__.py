"""Canonical models: the hub's own English shapes that every adapter's output is mapped to.

Agency applications see these, whichever national system answered. Dates are ISO 8601,
codes are decoded to English words, identifiers are validated types.
"""

from hub.canonical.common import (
    Address,
    CanonicalModel,
    EnterpriseCodeStr,
    Gender,
    PersonalIdStr,
    Relative,
)
from hub.canonical.population import (
    Citizen,
    CitizenLookup,
    CitizenVerification,
    CitizenVerificationResult,
    FieldMatches,
    Household,
)

__all__ = [
    "Address",
    "CanonicalModel",
    "Citizen",
    "CitizenLookup",
    "CitizenVerification",
    "CitizenVerificationResult",
    "EnterpriseCodeStr",
    "FieldMatches",
    "Gender",
    "Household",
    "PersonalIdStr",
    "Relative",
]
