"""Core rows → the plain records the pure rule modules take (no queries here: callers pass rows)."""
from __future__ import annotations

from collections.abc import Iterable

from .allergy import AllergyEntry
from .supply import FillRecord

# Fills that put medication in the patient's hands (and so count for supply and adherence).
COUNTED_FILL_STATUSES = ("dispensed", "partially_dispensed", "picked_up")


def fill_records(fills: Iterable) -> tuple[FillRecord, ...]:
    """``pharmacy.models.Fill`` rows (or anything with the same attributes) → ``FillRecord``s."""
    return tuple(FillRecord(f.fill_date, f.days_supply, f.quantity) for f in fills
                 if f.status in COUNTED_FILL_STATUSES)


def allergy_entry(allergy) -> AllergyEntry:
    """A ``pharmacy.models.Allergy`` row as the allergy rule takes it (source "pharmacy")."""
    return AllergyEntry(substance=allergy.substance, code=allergy.rxcui, code_system="rxnorm" if allergy.rxcui else "",
                        drug_class=allergy.drug_class, reaction=allergy.reaction, severity=allergy.severity,
                        status=allergy.status, source="pharmacy", id=allergy.pk)
