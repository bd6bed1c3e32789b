"""Refill policy defaults (settings.RXHUB), read at call time so tests and admins can change them."""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from .eligibility import EligibilityPolicy


def eligibility_policy() -> EligibilityPolicy:
    rx = settings.RXHUB
    return EligibilityPolicy(
        too_soon_share=Decimal(str(rx.get("REFILL_TOO_SOON_SHARE", "0.75"))),
        non_controlled_expiry_days=int(rx.get("NON_CONTROLLED_EXPIRY_DAYS", 365)),
    )


def lookahead_days() -> int:
    return int(settings.RXHUB.get("REFILL_LOOKAHEAD_DAYS", 7))
