"""Canonical models: the hub's own English shapes that every adapter's output is mapped to.

Agency applications see these, whichever national system answered. Dates are ISO 8601,
codes are decoded to English words, identifiers are validated types. What is common to
several systems lives here (common.py); each system's own models live beside its adapter
(`adapters/<name>/models.py`), and the payment capability's contract with any payment
provider in `hub.capabilities.payments.models`.
"""

from hub.canonical.common import (
    Address,
    CanonicalModel,
    EnterpriseCodeStr,
    Gender,
    MaritalStatus,
    PersonalIdStr,
    Relative,
)

__all__ = [
    "Address",
    "CanonicalModel",
    "EnterpriseCodeStr",
    "Gender",
    "MaritalStatus",
    "PersonalIdStr",
    "Relative",
]
