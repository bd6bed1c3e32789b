"""Inbound NewRx from a prescriber's system (``POST /api/v1/ncpdp/``): a new prescription.

``new_rx_receive(parsed, message)`` is the handler the inbound NCPDP pipeline calls (store first,
parse, dedupe, sender binding are the pipeline's; this is only "what a NewRx does"). It runs
inside the pipeline's transaction and either

* creates the Prescription for the one patient on file with this name and date of birth, and
  closes any renewal request waiting for it (``refill_requests_close_for_new_prescription``,
  refills/new_prescriptions.py — EPCS flow: ``awaiting_new_prescription`` →
  ``replaced_by_new_prescription``); the answer is Status 010;
* or, when no patient or several match, opens a :class:`NewRxPatientMatch` for a person and
  answers Status 010 (accepted, patient to be matched); ``new_rx_match_resolve`` creates the
  prescription once someone has chosen the patient;
* or raises :class:`ScriptError` 900 naming the element whose value cannot be used here (unknown
  prescriber NPI, drug not in the catalog, no days supply …), so the sender gets an Error with the
  reason and nothing is written.

Facts used: NewRx carries Patient, Pharmacy, Prescriber and MedicationPrescribed (DrugDescription,
DrugCoded/ProductCode ND, Quantity, DaysSupply, WrittenDate, NumberOfRefills, Sig) in SCRIPT
2017071 (docs/standards.md); NumberOfRefills is refills after the first fill.
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, actor_user, save_with_history, system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.interop import ncpdp
from pharmacy.interop.ncpdp import ScriptError
from pharmacy.models import Drug, Patient, Pharmacy, Prescriber, Prescription
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, require_role
from pharmacy.services import prescription_create
from pharmacy.validators import normalize_ndc

from .models import InboundNcpdpMessage, NewRxPatientMatch, RefillRequest
from .new_prescriptions import refill_requests_close_for_new_prescription

ACTOR = system_actor("system:ncpdp-inbound")
TX = "Body/NewRx"


@dataclass
class NewRxOutcome:
    summary: str
    prescription: Prescription | None = None
    closed: list[RefillRequest] = field(default_factory=list)
    match: NewRxPatientMatch | None = None

    @property
    def request(self) -> RefillRequest | None:
        return self.closed[0] if self.closed else None


def _reject(element: str, problem: str) -> ScriptError:
    return ScriptError(ncpdp.ERROR_TRANSACTION_REJECTED, f"{element}: {problem}", element=element)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.casefold() if ch.isalnum())


# --- what the message names ---------------------------------------------------------------------

def _pharmacy(parsed: ncpdp.ScriptMessage) -> Pharmacy:
    """The dispensing pharmacy: Header/To (Qualifier P) or the body's Pharmacy NCPDPID."""
    header_id = parsed.to.id if parsed.to.qualifier == "P" else ""
    body_id = parsed.pharmacy.ncpdp_id if parsed.pharmacy else ""
    if header_id and body_id and header_id != body_id:
        raise _reject(f"{TX}/Pharmacy/Identification/NCPDPID", f"{body_id} is not the addressee in Header/To "
                                                               f"({header_id})")
    ncpdp_id = header_id or body_id
    pharmacy = Pharmacy.objects.filter(ncpdp_id=ncpdp_id).first() if ncpdp_id else None
    if pharmacy is None:
        raise _reject("Header/To" if header_id else f"{TX}/Pharmacy/Identification/NCPDPID",
                      f"pharmacy NCPDP ID {ncpdp_id or '(none)'} is not known here")
    return pharmacy


def _prescriber(parsed: ncpdp.ScriptMessage) -> Prescriber:
    info = parsed.prescriber
    if info is None:
        raise _reject(f"{TX}/Prescriber", "missing")
    if info.is_veterinarian:
        where = f"{TX}/Prescriber/Veterinarian/Identification/StateLicenseNumber"
        found = (Prescriber.objects.filter(is_veterinarian=True, state_license_number=info.state_license).first()
                 if info.state_license else None)
        if found is None:
            raise _reject(where, f"veterinarian licence {info.state_license or '(none)'} is not known here")
        return found
    where = f"{TX}/Prescriber/NonVeterinarian/Identification/NPI"
    found = Prescriber.objects.filter(npi=info.npi).first() if info.npi else None
    if found is None:
        raise _reject(where, f"prescriber NPI {info.npi or '(none)'} is not known here")
    return found


def _drug(med: ncpdp.MedicationInfo) -> Drug:
    if med.ndc:
        try:
            ndc = normalize_ndc(med.ndc)
        except ValidationError:
            raise _reject(f"{TX}/MedicationPrescribed/DrugCoded/ProductCode/Code",
                          f"{med.ndc!r} is not an NDC") from None
        found = Drug.objects.filter(ndc=ndc).first()
        if found is not None:
            return found
    name = (med.description or "").strip()
    matches = [d for d in Drug.objects.filter(Q(name__iexact=name) | Q(name__iexact=name.split(" ")[0]))
               if _fold(str(d)) == _fold(name) or _fold(d.name) == _fold(name)]
    if len(matches) == 1:
        return matches[0]
    where = f"{TX}/MedicationPrescribed/DrugCoded/ProductCode/Code" if med.ndc else \
        f"{TX}/MedicationPrescribed/DrugDescription"
    raise _reject(where, f"{med.ndc or name!r} is not in the drug catalog here; add it, then resend")


def _prescription_fields(parsed: ncpdp.ScriptMessage) -> dict:
    med = parsed.medication_prescribed
    if med is None:
        raise _reject(f"{TX}/MedicationPrescribed", "missing")
    w = f"{TX}/MedicationPrescribed"
    if not med.quantity or med.quantity <= 0:
        raise _reject(f"{w}/Quantity/Value", "missing or zero")
    if not med.days_supply:
        raise _reject(f"{w}/DaysSupply", "missing; this receiver needs the days supply to track the supply")
    if not med.sig_text:
        raise _reject(f"{w}/Sig/SigText", "missing")
    if med.written_date is None:
        raise _reject(f"{w}/WrittenDate", "missing")
    refills = med.refills or 0
    return dict(drug=_drug(med), sig=med.sig_text, quantity=med.quantity, days_supply=med.days_supply,
                refills_authorized=refills, refills_remaining=refills, written_date=med.written_date)


def _candidates(info: ncpdp.PatientInfo) -> list[Patient]:
    """Patients on file with this family name and date of birth (given name and species checked
    after folding accents: "Zoe" in the message is "Zoë" on file)."""
    qs = Patient.objects.filter(birth_date=info.birth_date) if info.birth_date else Patient.objects.none()
    out = []
    for p in qs.filter(last_name__iexact=info.last_name) if info.last_name else []:
        out.append(p)
    if not out and info.last_name and info.birth_date:  # accents differ: compare folded
        out = [p for p in qs if _fold(p.last_name) == _fold(info.last_name)]
    return out


def _match(info: ncpdp.PatientInfo | None) -> tuple[Patient | None, list[dict]]:
    if info is None or not info.last_name:
        raise _reject(f"{TX}/Patient", "missing")
    candidates = _candidates(info)
    exact = [p for p in candidates if _fold(p.first_name) == _fold(info.first_name)
             and p.is_animal == info.is_animal]
    if len(exact) == 1:
        return exact[0], []
    return None, [{"patient_id": p.pk, "reasons": ["same family name", "same birth date"]
                   + (["same given name"] if p in exact else [])} for p in candidates]


# --- the handler ----------------------------------------------------------------------------------

def _create(parsed: ncpdp.ScriptMessage, *, patient: Patient, pharmacy: Pharmacy, prescriber: Prescriber,
            fields: dict, actor: Actor, reason: str) -> tuple[Prescription, list[RefillRequest]]:
    rx = Prescription(patient=patient, pharmacy=pharmacy, prescriber=prescriber, **fields)
    rx.full_clean(exclude=["rx_number"])
    prescription_create(prescription=rx, actor=actor, reason=reason)
    closed = refill_requests_close_for_new_prescription(prescription=rx, actor=actor)
    record_event(kind="ncpdp.new_rx_received", actor=actor, subject=rx, patient_id=patient.pk,
                 summary=f"New prescription {rx.pk} from NewRx {parsed.message_id}",
                 data={"message_id": parsed.message_id, "prescriber_order_number": parsed.prescriber_order_number,
                       "closed_requests": [r.pk for r in closed]})
    return rx, closed


def new_rx_receive(parsed: ncpdp.ScriptMessage, message: InboundNcpdpMessage) -> NewRxOutcome:
    """Handle one parsed NewRx (inside the inbound pipeline's transaction)."""
    pharmacy = _pharmacy(parsed)
    prescriber = _prescriber(parsed)
    fields = _prescription_fields(parsed)  # refuses before anything is written
    patient, candidates = _match(parsed.patient)
    if patient is None:
        info = parsed.patient
        data = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(info).items()}
        item = save_with_history(NewRxPatientMatch(inbound_message=message, patient_data=data, candidates=candidates),
                                 actor=ACTOR, reason=f"NewRx {parsed.message_id}: patient to be matched by a person "
                                                     f"({len(candidates)} candidate(s))")
        record_event(kind="ncpdp.new_rx_patient_match", actor=ACTOR, subject=item,
                     summary=f"NewRx {parsed.message_id}: {len(candidates)} candidate patient(s); a person decides",
                     data={"message_id": parsed.message_id, "candidates": [c["patient_id"] for c in candidates]})
        return NewRxOutcome(summary=f"NewRx accepted; patient to be matched by staff (item {item.pk})", match=item)
    rx, closed = _create(parsed, patient=patient, pharmacy=pharmacy, prescriber=prescriber, fields=fields,
                         actor=ACTOR, reason=f"New prescription from NCPDP NewRx {parsed.message_id}")
    tail = f"; closed request {', '.join(str(r.pk) for r in closed)}" if closed else ""
    return NewRxOutcome(summary=f"Prescription {rx.pk} created{tail}", prescription=rx, closed=closed)


def new_rx_match_resolve(*, item_id: int, patient_id: int, actor: Actor) -> NewRxPatientMatch:
    """A person chose the patient of a waiting NewRx: create the prescription from the stored
    message (and close a renewal waiting for it)."""
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="match the patient of a new prescription")
    with transaction.atomic():
        item = NewRxPatientMatch.objects.select_for_update().select_related("inbound_message").get(pk=item_id)
        if item.status != NewRxPatientMatch.Status.OPEN:
            raise TransitionNotAllowed(model="NewRx patient match", current=item.status,
                                       target=NewRxPatientMatch.Status.RESOLVED)
        patient = Patient.objects.filter(pk=patient_id).first()
        if patient is None:
            raise DomainError(f"Patient {patient_id} does not exist.", code="not_found")
        try:
            parsed = ncpdp.parse_message(item.inbound_message.payload)
            rx, closed = _create(parsed, patient=patient, pharmacy=_pharmacy(parsed), prescriber=_prescriber(parsed),
                                 fields=_prescription_fields(parsed), actor=actor,
                                 reason=f"New prescription from NCPDP NewRx {parsed.message_id} (patient chosen by "
                                        "staff)")
        except ScriptError as exc:
            raise DomainError(exc.description, code="new_rx_unusable") from exc
        item.status, item.resolved_patient, item.prescription = NewRxPatientMatch.Status.RESOLVED, patient, rx
        item.resolved_by, item.resolved_at = actor_user(actor), timezone.now()
        save_with_history(item, actor=actor, reason=f"Matched to patient {patient.pk}; prescription {rx.pk} created",
                          update_fields=["status", "resolved_patient", "prescription", "resolved_by", "resolved_at"])
    return item
