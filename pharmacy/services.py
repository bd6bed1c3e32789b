"""State changes of the core domain. Each takes the acting user or system actor and records why."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction

from .actors import Actor, bulk_create_recorded, save_with_history, system_actor
from .choices import PRESCRIPTION_TRANSITIONS
from .errors import DomainError, TransitionNotAllowed
from .models import Allergy, AllergyFlag, Encounter, Facility, Fill, Patient, Prescription
from .registry import fill_recorded_hooks
from .roles import ADMIN, PHARMACIST, has_role
from .rules.allergy import drug_allergy_conflicts
from .rules.facts import allergy_entry


def default_facility() -> Facility:
    code = settings.RXHUB["DEFAULT_FACILITY_CODE"]
    facility = Facility.objects.filter(code=code).first()
    if facility is None:
        facility = save_with_history(
            Facility(code=code, name="Main practice"), actor=system_actor("system:maintenance"),
            reason="Default facility created on first use",
        )
    return facility


@transaction.atomic
def encounter_record(*, actor: Actor, reason: str, patient: Patient, **fields) -> Encounter:
    """Record a visit; a newer visit moves the patient's last visit date forward."""
    encounter = save_with_history(Encounter(patient=patient, **fields), actor=actor, reason=reason)
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    if locked.last_visit_date is None or encounter.date > locked.last_visit_date:
        locked.last_visit_date = encounter.date
        save_with_history(locked, actor=actor, reason=f"Last visit updated from encounter {encounter.pk}",
                          update_fields=["last_visit_date"])
    return encounter


# --- API tokens: an account sees, creates and revokes its own (issue 11 item 8) --------------------
# The audit chain hears of both through audit/signals.py (post_save / post_delete of Token).

@transaction.atomic
def api_token_create(*, actor):
    """A new token for the acting account; an existing one is revoked first (one token per account)."""
    from rest_framework.authtoken.models import Token

    for old in Token.objects.select_for_update().filter(user=actor):
        old.delete()
    return Token.objects.create(user=actor)


@transaction.atomic
def api_token_revoke(*, actor) -> bool:
    from rest_framework.authtoken.models import Token

    tokens = list(Token.objects.select_for_update().filter(user=actor))
    for token in tokens:
        token.delete()
    return bool(tokens)


# --------------------------------------------------------------------------------------------
# Allergy check on new prescriptions
# --------------------------------------------------------------------------------------------

@transaction.atomic
def prescription_create(*, prescription: Prescription, actor: Actor, reason: str) -> Prescription:
    """Record a new prescription (history: who and why) and raise its allergy flags with the same
    actor. Every creation path calls this — UI, API, admin, reconciliation, inbound NewRx, demo,
    test factories — instead of a ``post_save`` receiver writing flags with no actor (issue 12:
    signals never write domain rows). ``prescription`` is an unsaved, already cleaned instance."""
    if prescription.pk is not None:
        raise DomainError("prescription_create records a new prescription only.", code="invalid_state")
    save_with_history(prescription, actor=actor, reason=reason[:500])
    prescription_allergy_check(prescription=prescription, actor=actor,
                               reason=f"Allergy check of new prescription {prescription.pk} ({reason})")
    return prescription


def prescription_allergy_check(*, prescription: Prescription, actor: Actor,
                               reason: str = "Allergy check of a prescription") -> list[AllergyFlag]:
    """Flag a prescription whose drug conflicts with an active allergy (same ingredient or a
    cross-sensitive class, ``pharmacy/rules/allergy.py``). Returns the flags raised; a flag that
    already exists for the same allergy is not raised twice. Each flag is saved with history
    (``actor``, ``reason``). Called by ``prescription_create`` for every new prescription."""
    allergies = list(Allergy.objects.filter(patient_id=prescription.patient_id, status="active"))
    if not allergies:
        return []
    drug = prescription.drug
    hits = drug_allergy_conflicts(drug_name=drug.name, drug_class=drug.therapeutic_class, rxcui=drug.rxcui,
                                  allergies=[allergy_entry(a) for a in allergies])
    flags = []
    by_id = {a.pk: a for a in allergies}
    existing = set(AllergyFlag.objects.filter(prescription=prescription).values_list("allergy_id", flat=True))
    for entry, why in hits:
        if entry.id in existing:
            continue
        existing.add(entry.id)
        flags.append(save_with_history(AllergyFlag(prescription=prescription, allergy=by_id[entry.id],
                                                   reason=why[:300]), actor=actor, reason=reason[:500]))
    return flags


# --------------------------------------------------------------------------------------------
# Fills: one write path, and the apps hear of each new fill through the registry
# --------------------------------------------------------------------------------------------

@transaction.atomic
def fill_record(*, fill: Fill, actor: Actor, reason: str) -> Fill:
    """Record a new fill (history: who and why) and call every registered ``fill_recorded`` hook
    in the same transaction (reconciliation queues the EHR dispense share as an outbox row, so the
    share rolls back with the fill). Every creation path calls this — refill fill reports, API,
    admin (form and inline), demo, test factories — instead of a ``post_save`` receiver (issue 12:
    signals never write domain rows). ``fill`` is an unsaved, already cleaned instance."""
    if fill.pk is not None:
        raise DomainError("fill_record records a new fill only.", code="invalid_state")
    save_with_history(fill, actor=actor, reason=reason[:500])
    _fill_recorded(fill, actor=actor, reason=reason)
    return fill


@transaction.atomic
def fill_record_many(*, fills: list[Fill], actor: Actor, reason: str) -> list[Fill]:
    """``fill_record`` for many new fills at once (bulk insert with history; the hooks hear of each)."""
    saved = bulk_create_recorded(Fill, fills, actor=actor, reason=reason[:500])
    for fill in saved:
        _fill_recorded(fill, actor=actor, reason=reason)
    return saved


def _fill_recorded(fill: Fill, *, actor: Actor, reason: str) -> None:
    for hook in fill_recorded_hooks():
        hook(fill=fill, actor=actor, reason=reason)


@transaction.atomic
def patient_create(*, actor: Actor, reason: str, first_name: str, last_name: str, birth_date, sex: str = "U",
                   mrn: str = "", **fields) -> Patient:
    """A new patient (e.g. from an inbound message no existing patient matches). Without an MRN the
    next free ``NEW-<n>`` of the default facility is given; the row is validated like any input."""
    facility = default_facility()
    if not mrn:
        n = Patient.objects.filter(facility=facility).count() + 1
        while Patient.objects.filter(facility=facility, mrn=f"NEW-{n:06d}").exists():
            n += 1
        mrn = f"NEW-{n:06d}"
    patient = Patient(facility=facility, mrn=mrn, first_name=first_name, last_name=last_name,
                      birth_date=birth_date, sex=_sex_code(sex), **fields)
    patient.full_clean()
    return save_with_history(patient, actor=actor, reason=reason)


def _sex_code(value: str) -> str:
    code = (value or "U").strip()[:1].upper()
    return code if code in {"F", "M", "O", "U"} else "U"


# --- prescriptions: one write path for pharmacy, status and refills (issue 14 item 3) ---------------

_pharmacy_change_handlers: list = []


def register_pharmacy_change_handler(handler) -> None:
    """The workflow app that owns pharmacy messaging (refills) moves a prescription to another
    pharmacy: ``handler(prescription_id=, pharmacy=, actor=)`` sends CancelRx to the old pharmacy and
    moves open requests. Registered from its AppConfig.ready; the core never names it."""
    if handler not in _pharmacy_change_handlers:
        _pharmacy_change_handlers.append(handler)


class PrescriptionChangeRefused(DomainError):
    code = "prescription_change_refused"


_UNSET = object()


def prescription_update(*, prescription_id: int, actor: Actor, reason: str, pharmacy=_UNSET, status: str | None = None,
                        refills_remaining: int | None = None, **other) -> Prescription:
    """Change a prescription's pharmacy, status, refills remaining or plain fields, checked and with
    history. A pharmacy change goes through the registered handler (CancelRx to the old pharmacy,
    NCPDP SCRIPT 2017071); a status change must be in PRESCRIPTION_TRANSITIONS; refills remaining
    never exceeds the refills authorized and only a pharmacist or admin raises it (a correction; a
    partner system only counts fills down)."""
    with transaction.atomic():
        rx = Prescription.objects.select_for_update().get(pk=prescription_id)
        if pharmacy is None and rx.pharmacy_id is not None:
            raise PrescriptionChangeRefused("A prescription sent to a pharmacy moves to another one; it is not "
                                            "unassigned (discontinue it instead).", code="pharmacy_required")
        if pharmacy not in (_UNSET, None) and pharmacy.pk != rx.pharmacy_id:
            if not _pharmacy_change_handlers:
                raise PrescriptionChangeRefused("No pharmacy messaging is installed to move this prescription.")
            _pharmacy_change_handlers[0](prescription_id=rx.pk, pharmacy=pharmacy, actor=actor)
            rx = Prescription.objects.select_for_update().get(pk=prescription_id)
        changed: list[str] = []
        notes: list[str] = []
        if status is not None and status != rx.status:
            if status not in PRESCRIPTION_TRANSITIONS.get(rx.status, frozenset()):
                raise TransitionNotAllowed(model="prescription", current=rx.status, target=status)
            notes.append(f"status {rx.status} → {status}")
            rx.status = status
            changed.append("status")
        if refills_remaining is not None and refills_remaining != rx.refills_remaining:
            if refills_remaining > rx.refills_authorized:
                raise PrescriptionChangeRefused(
                    f"Refills remaining cannot exceed the {rx.refills_authorized} refills authorized.",
                    code="refills_exceed_authorized", errors={"refills_remaining": [
                        {"code": "refills_exceed_authorized", "message": "More than the refills authorized."}]})
            if refills_remaining > rx.refills_remaining and not has_role(actor, PHARMACIST, ADMIN):
                raise PrescriptionChangeRefused(
                    "Only a pharmacist or an admin may raise the refills remaining (a correction); "
                    "more refills need a renewal.", code="refills_increase_not_allowed")
            notes.append(f"refills remaining {rx.refills_remaining} → {refills_remaining}")
            rx.refills_remaining = refills_remaining
            changed.append("refills_remaining")
        for name, value in other.items():
            if getattr(rx, name) != value:
                setattr(rx, name, value)
                changed.append(name)
        if changed:
            rx.full_clean()
            why = reason + (f" ({'; '.join(notes)})" if notes else "")
            save_with_history(rx, actor=actor, reason=why, update_fields=changed)
    return rx
