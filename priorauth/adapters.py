"""Payer adapters, chosen per payer and benefit (STANDARDS.md): NCPDP SCRIPT ePA for
pharmacy-benefit drugs, Da Vinci PAS (FHIR ``Claim/$submit``) for medical-benefit drugs.

An adapter turns a case into an outbound message (kind, content type, payload, message id) and a
payer answer into a ``ParsedResponse``. Codecs: pharmacy/interop/ncpdp.py (ePA builders and
reader) and pharmacy/interop/pas.py. Delivery is the outbox's job (services).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from pharmacy.interop import ncpdp, pas

from .conf import sender_id


class AdapterError(ValueError):
    """A payer answer the adapter cannot read."""


@dataclass
class Outbound:
    kind: str
    submission_kind: str
    content_type: str
    payload: str
    message_id: str


@dataclass
class ParsedResponse:
    decision: str  # approved | denied | pended | closed
    authorization_number: str = ""
    effective_date: date | None = None
    expiration_date: date | None = None
    reasons: list[str] = field(default_factory=list)
    questions: list[dict] = field(default_factory=list)
    payer_case_id: str = ""


def _gender_code(sex: str) -> str:
    return sex if sex in ("M", "F", "U") else "U"


def _attachments(case) -> list[ncpdp.Attachment]:
    out = (
        [ncpdp.Attachment("medical-necessity-letter.txt", "text/plain", case.letter.encode("utf-8"))]
        if case.letter
        else []
    )
    out += [ncpdp.Attachment(a.file_name, a.mime_type, bytes(a.data)) for a in case.attachments.all()]
    return out


class EpaAdapter:
    name = "epa"
    content_type = "application/xml"

    def _parties(self, case):
        rx = case.prescription
        p, d, ph = rx.patient, rx.prescriber, rx.pharmacy
        patient = ncpdp.PatientInfo(
            last_name=p.last_name,
            first_name=p.first_name,
            gender=_gender_code(p.sex),
            birth_date=p.birth_date,
            address_line1=p.address_line1,
            city=p.city,
            state=p.state,
            postal_code=p.postal_code,
            phone=p.phone,
        )
        prescriber = ncpdp.PrescriberInfo(
            npi=d.npi or "", dea=d.dea_number, last_name=d.last_name, first_name=d.first_name, phone=d.phone
        )
        pharmacy = (
            ncpdp.PharmacyInfo(ncpdp_id=ph.ncpdp_id, npi=ph.npi, name=ph.name, phone=ph.phone) if ph else None
        )
        fields = case.fields or {}
        qty = fields.get("quantity") or rx.quantity
        try:
            qty = Decimal(str(qty))
        except ArithmeticError:
            qty = rx.quantity
        medication = ncpdp.MedicationInfo(
            description=str(rx.drug),
            ndc=rx.drug.ndc or "",
            quantity=qty,
            days_supply=rx.days_supply,
            written_date=rx.written_date,
            refills=rx.refills_authorized,
            sig_text=rx.sig,
        )
        return patient, prescriber, pharmacy, medication

    def _header(self, case, message_id: str) -> ncpdp.Header:
        ph = case.prescription.pharmacy
        sender = ncpdp.Party("P", ph.ncpdp_id) if ph else ncpdp.Party("ZZZ", sender_id())
        payer_id = case.payer.bin if case.payer else (case.coverage.bin if case.coverage else "UNKNOWN")
        return ncpdp.Header(
            to=ncpdp.Party("PY", payer_id),
            from_=sender,
            message_id=message_id,
            rx_reference_number=case.prescription.rx_number,
            prescriber_order_number=f"PA{case.pk}",
        )

    def submission(self, case) -> Outbound:
        """PAInitiationRequest: ask the payer for its question set (the letter rides in Note)."""
        message_id = ncpdp.new_message_id()
        patient, prescriber, pharmacy, med = self._parties(case)
        xml = ncpdp.build_pa_initiation_request(
            header=self._header(case, message_id),
            patient=patient,
            prescriber=prescriber,
            medication=med,
            pharmacy=pharmacy,
            pa_reference_id=f"RXHUB-PA-{case.pk}",
            note=case.letter[:2000],
        )
        return Outbound("ncpdp:PAInitiationRequest", "initiation", self.content_type, xml, message_id)

    def answers(self, case, answers: dict[str, str]) -> Outbound:
        """PARequest: answers to the payer's question set, the letter and attachments."""
        message_id = ncpdp.new_message_id()
        patient, prescriber, pharmacy, med = self._parties(case)
        xml = ncpdp.build_pa_request(
            header=self._header(case, message_id),
            pa_case_id=case.payer_case_id,
            answers=list(answers.items()),
            patient=patient,
            prescriber=prescriber,
            medication=med,
            pharmacy=pharmacy,
            pa_reference_id=f"RXHUB-PA-{case.pk}",
            attachments=_attachments(case),
        )
        return Outbound("ncpdp:PARequest", "request", self.content_type, xml, message_id)

    def appeal(self, case) -> Outbound:
        message_id = ncpdp.new_message_id()
        patient, prescriber, pharmacy, med = self._parties(case)
        xml = ncpdp.build_pa_appeal_request(
            header=self._header(case, message_id),
            pa_case_id=case.payer_case_id or f"RXHUB-PA-{case.pk}",
            patient=patient,
            prescriber=prescriber,
            medication=med,
            note=case.appeal_letter[:2000],
            pharmacy=pharmacy,
            pa_reference_id=f"RXHUB-PA-{case.pk}",
            attachments=_attachments(case),
        )
        return Outbound("ncpdp:PAAppealRequest", "appeal", self.content_type, xml, message_id)

    def cancel(self, case, note: str = "") -> Outbound:
        message_id = ncpdp.new_message_id()
        patient, prescriber, pharmacy, med = self._parties(case)
        xml = ncpdp.build_pa_cancel_request(
            header=self._header(case, message_id),
            pa_case_id=case.payer_case_id or f"RXHUB-PA-{case.pk}",
            patient=patient,
            prescriber=prescriber,
            medication=med,
            note=note[:500],
            pharmacy=pharmacy,
            pa_reference_id=f"RXHUB-PA-{case.pk}",
        )
        return Outbound("ncpdp:PACancelRequest", "cancel", self.content_type, xml, message_id)

    def parse(self, text: str | bytes) -> ParsedResponse:
        try:
            msg = ncpdp.parse_message(text)
        except ncpdp.ScriptError as exc:
            raise AdapterError(exc.description) from exc
        if msg.transaction not in (
            "PAInitiationResponse",
            "PAResponse",
            "PAAppealResponse",
            "PACancelResponse",
        ):
            raise AdapterError(f"Body/{msg.transaction}: not a PA response")
        status = msg.response_status
        questions = [
            {"id": q.id, "text": q.text, "type": q.type, "choices": [list(c) for c in q.choices]}
            for q in msg.question_set
        ]
        # ePA ResponseStatus (STANDARDS.md): Approved, Denied, InProcess (pended), Open (more
        # information required — question set), Closed, PartiallyDenied.
        if status == "Approved" or (status == "PartiallyDenied" and msg.authorization_number):
            decision = "approved"
        elif status in ("Denied", "PartiallyDenied"):
            decision = "denied"
        elif status in ("Open", "InProcess"):
            decision = "pended"
        elif status == "Closed":
            decision = "closed"
        else:
            raise AdapterError(f"ResponseStatus {status!r} not understood")
        if decision == "approved" and not msg.authorization_number:
            raise AdapterError(
                "AuthorizationDetail/AuthorizationNumber: an approval needs an authorization number"
            )
        reasons = list(msg.denial_reasons) or (
            [msg.note] if decision in ("denied", "closed") and msg.note else []
        )
        return ParsedResponse(
            decision=decision,
            authorization_number=msg.authorization_number,
            effective_date=msg.effective_date,
            expiration_date=msg.expiration_date,
            reasons=reasons,
            questions=questions,
            payer_case_id=msg.pa_case_id,
        )


class PasAdapter:
    name = "pas"
    content_type = "application/fhir+json"

    def _request(self, case, *, letter: str, related: str = "", extra_info: str = "") -> pas.PASRequest:
        rx = case.prescription
        p, d = rx.patient, rx.prescriber
        fields = case.fields or {}
        codes = [c.strip() for c in (fields.get("diagnosis_codes") or "").split(",") if c.strip()]
        gender = {"M": "male", "F": "female", "O": "other"}.get(p.sex, "unknown")
        text = letter + (f"\n\n{extra_info}" if extra_info else "")
        attachments = [(a.file_name, a.mime_type, bytes(a.data)) for a in case.attachments.all()]
        return pas.PASRequest(
            claim_id=f"RXHUB-PA-{case.pk}-{datetime.now().strftime('%Y%m%d%H%M%S%f')}",
            patient_id=str(p.pk),
            patient_family=p.last_name,
            patient_given=p.first_name,
            birth_date=p.birth_date,
            gender=gender,
            member_id=case.coverage.member_id if case.coverage else fields.get("member_id", ""),
            payer_name=case.payer.name if case.payer else (case.coverage.payer_name if case.coverage else ""),
            payer_id=case.payer.bin if case.payer else "",
            prescriber_npi=d.npi or "",
            prescriber_family=d.last_name,
            prescriber_given=d.first_name,
            ndc=rx.drug.ndc or "",
            drug_description=str(rx.drug),
            quantity=rx.quantity,
            days_supply=rx.days_supply,
            diagnosis_codes=codes,
            letter=text,
            expedited=case.is_expedited,
            related_claim_id=related,
            attachments=attachments,
        )

    def _out(self, bundle: dict, kind: str, submission_kind: str) -> Outbound:
        return Outbound(
            kind,
            submission_kind,
            self.content_type,
            json.dumps(bundle, indent=1),
            bundle["identifier"]["value"][-35:],
        )

    def submission(self, case) -> Outbound:
        return self._out(
            pas.build_claim_bundle(self._request(case, letter=case.letter)),
            "fhir:pas-claim-submit",
            "pas_claim",
        )

    def answers(self, case, answers: dict[str, str]) -> Outbound:
        info = "Answers to the payer's questions:\n" + "\n".join(f"{k}: {v}" for k, v in answers.items())
        return self._out(
            pas.build_claim_bundle(
                self._request(case, letter=case.letter, related=case.payer_case_id, extra_info=info)
            ),
            "fhir:pas-claim-submit",
            "request",
        )

    def appeal(self, case) -> Outbound:
        return self._out(
            pas.build_claim_bundle(
                self._request(case, letter=case.appeal_letter, related=case.payer_case_id)
            ),
            "fhir:pas-claim-submit",
            "appeal",
        )

    def cancel(self, case, note: str = "") -> Outbound:
        bundle = pas.build_claim_bundle(
            self._request(case, letter=note or "Request withdrawn", related=case.payer_case_id)
        )
        bundle["entry"][0]["resource"]["status"] = "cancelled"
        return self._out(bundle, "fhir:pas-claim-cancel", "cancel")

    def parse(self, text: str | bytes) -> ParsedResponse:
        try:
            outcome = pas.parse_claim_response(text)
        except pas.PASError as exc:
            raise AdapterError(str(exc)) from exc
        return ParsedResponse(
            decision=outcome.decision,
            authorization_number=outcome.authorization_number,
            effective_date=outcome.effective_date,
            expiration_date=outcome.expiration_date,
            reasons=outcome.reasons,
            payer_case_id=outcome.claim_response_id,
        )


ADAPTERS = {"epa": EpaAdapter(), "pas": PasAdapter()}


def adapter_for(case):
    return ADAPTERS[case.adapter]
