"""Claim rejections: the NCPDP reject-75 trigger that opens a PA case."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from pharmacy.actors import Actor, save_with_history
from pharmacy.models import Prescription

from ..choices import (
    OPEN_STATUSES,
    PA_REQUIRED,
    REJECT_CODES,
    Trigger,
)
from ..models import (
    ClaimRejection,
    PACase,
)
from .cases import pa_case_open


def claim_rejection_receive(
    *,
    actor: Actor,
    claim_reference: str,
    patient,
    prescription: Prescription | None,
    drug,
    ndc: str,
    bin: str,
    pcn: str,
    group: str,
    reject_codes: list[str],
    rejected_at,
) -> tuple[ClaimRejection, bool]:
    """Store the rejected claim (one row per claim reference) and open a PA case when a code is
    75 (NCPDP reject 75 = prior authorization required, DESIGN.md); other codes (70 not covered,
    MR not on formulary, 76 plan limits, 79 refill too soon …) are recorded as their own reasons.
    Returns (rejection, created); a repeated delivery returns the first row and its case."""
    codes = [str(c).strip().upper() for c in reject_codes]
    try:
        with transaction.atomic():
            existing = (
                ClaimRejection.objects.select_for_update().filter(claim_reference=claim_reference).first()
            )
            if existing is not None:
                existing.deliveries += 1
                save_with_history(
                    existing,
                    actor=actor,
                    reason=f"Repeated delivery #{existing.deliveries}",
                    update_fields=["deliveries"],
                )
                return existing, False
            reasons = []
            for code in codes:
                reasons.append(
                    {
                        "code": code,
                        "meaning": REJECT_CODES.get(code, "Unknown reject code"),
                        "action": "PA case opened" if code == PA_REQUIRED else "Recorded (no PA case)",
                    }
                )
            rejection = ClaimRejection(
                claim_reference=claim_reference,
                prescription=prescription,
                patient=patient,
                drug=drug,
                ndc=ndc,
                bin=bin,
                pcn=pcn,
                group=group,
                reject_codes=codes,
                reasons=reasons,
                rejected_at=rejected_at,
            )
            save_with_history(rejection, actor=actor, reason=f"Claim rejected ({', '.join(codes)})")
            if PA_REQUIRED in codes:
                if prescription is None:
                    raise ValidationError(
                        {
                            "prescription": "Reject 75 needs a prescription (or patient and NDC "
                            "matching one) to open a PA case."
                        }
                    )
                case = PACase.objects.filter(prescription=prescription, status__in=OPEN_STATUSES).first()
                if case is None:
                    case = pa_case_open(
                        prescription_id=prescription.pk,
                        actor=actor,
                        trigger=Trigger.REJECT_75,
                        claim_reference=claim_reference,
                        bin=bin,
                        pcn=pcn,
                    )
                else:
                    reasons[codes.index(PA_REQUIRED)]["action"] = f"Joined open PA case {case.pk}"
                    rejection.reasons = reasons
                rejection.case = case
                save_with_history(
                    rejection,
                    actor=actor,
                    reason=f"Linked to PA case {case.pk}",
                    update_fields=["case", "reasons"],
                )
            return rejection, True
    except IntegrityError:  # a concurrent delivery of the same claim won the race
        if not ClaimRejection.objects.filter(claim_reference=claim_reference).exists():
            raise
        with transaction.atomic():  # count this delivery on the winner's row
            existing = ClaimRejection.objects.select_for_update().get(claim_reference=claim_reference)
            existing.deliveries += 1
            save_with_history(existing, actor=actor, reason=f"Repeated delivery #{existing.deliveries}",
                              update_fields=["deliveries"])
        return existing, False
