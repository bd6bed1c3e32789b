"""Payers and their criteria for a drug (reads used by the case services)."""
from __future__ import annotations

from django.db.models import Q

from ..models import (
    Payer,
    PayerCriteria,
)


def payer_for(*, bin: str, pcn: str = "") -> Payer | None:
    rows = list(Payer.objects.filter(bin=bin, is_active=True).filter(Q(pcn=pcn) | Q(pcn="")))
    rows.sort(key=lambda p: p.pcn == "")  # an exact PCN wins over the BIN-wide row
    return rows[0] if rows else None


def criteria_for(*, payer: Payer | None, drug) -> PayerCriteria | None:
    if payer is None:
        return None
    rows = PayerCriteria.objects.filter(payer=payer, is_active=True)
    by_drug = rows.filter(drug_name__iexact=drug.name).first()
    if by_drug:
        return by_drug
    if drug.therapeutic_class:
        return rows.filter(drug_name="", therapeutic_class=drug.therapeutic_class).first()
    return None
