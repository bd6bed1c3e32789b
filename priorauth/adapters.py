"""Payer adapters, chosen per payer and benefit (STANDARDS.md): NCPDP SCRIPT ePA for
pharmacy-benefit drugs, Da Vinci PAS (FHIR ``Claim/$submit``) for medical-benefit drugs.

An adapter turns a case into an outbound message (kind, content type, payload, message id) and a
payer answer into a ``ParsedResponse``. Codecs: pharmacy/interop/ncpdp/ (ePA builders and
reader) and pharmacy/interop/pas.py. Delivery is the outbox's job (services).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from pharmacy.errors import DomainError
from pharmacy.interop import ncpdp, pas
from pharmacy.ncpdp_parties import medication_info, patient_info, pharmacy_info, prescriber_info, refused_message

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


def _attachments(case) -> tuple[list[ncpdp.Attachment], list[str]]:
    """(the attachment the 2017071 schema can carry, names of the others). A PARequest or
    PAAppealRequest takes one attachment of a listed MIME type (PDF, images, CCR/SDA); the letter
    travels as text (QuestionSetComment / PANote), other files stay on the case and are named."""
    files = list(case.attachments.all())
    sendable = [a for a in files if a.mime_type in ncpdp.ATTACHMENT_MIME_TYPES]
    first = sendable[:1]
    others = [a.file_name for a in files if a not in first]
    return [ncpdp.Attachment(a.file_name, a.mime_type, bytes(a.data)) for a in first], others


def _letter_with(letter: str, others: list[str]) -> str:
    text = letter or ""
    if others:
        text += ("\n" if text else "") + "Further documents on file: " + ", ".join(others)
    return " ".join(text.split())[:2000]  # one line: the schema's text pattern has no line breaks


def _refused(exc: ncpdp.ValueRefused, transaction: str) -> DomainError:
    return DomainError(refused_message(exc, transaction), code="ncpdp_value_refused")


class EpaAdapter:
    name = "epa"
    content_type = "application/xml"

    def _parties(self, case):
        rx = case.prescription
        fields = case.fields or {}
        qty = fields.get("quantity") or rx.quantity
        try:
            qty = Decimal(str(qty))
        except ArithmeticError:
            qty = rx.quantity
        return (patient_info(rx.patient), prescriber_info(rx.prescriber),
                pharmacy_info(rx.pharmacy) if rx.pharmacy else None,
                medication_info(rx, refills=rx.refills_authorized, quantity=qty))

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

    def _build(self, transaction: str, builder, case, message_id: str, **kwargs) -> str:
        patient, prescriber, pharmacy, med = self._parties(case)
        try:
            return builder(header=self._header(case, message_id), patient=patient, prescriber=prescriber,
                           medication=med, pharmacy=pharmacy, pa_reference_id=f"RXHUB-PA-{case.pk}", **kwargs)
        except ncpdp.ValueRefused as exc:
            raise _refused(exc, transaction) from exc

    def submission(self, case) -> Outbound:
        """PAInitiationRequest: ask the payer for its question set (the letter goes with the
        PARequest: 2017071 gives the initiation request no note)."""
        message_id = ncpdp.new_message_id()
        xml = self._build("PAInitiationRequest", ncpdp.build_pa_initiation_request, case, message_id)
        return Outbound("ncpdp:PAInitiationRequest", "initiation", self.content_type, xml, message_id)

    def answers(self, case, answers: dict[str, str]) -> Outbound:
        """PARequest: the payer's questions with our answers, the letter (QuestionSetComment) and
        one attachment."""
        message_id = ncpdp.new_message_id()
        questions = [
            ncpdp.PAQuestion(id=str(q.get("id")), text=str(q.get("text") or q.get("id")),
                             type=q.get("type") if q.get("type") in ncpdp.PA_QUESTION_TYPES else "FreeText",
                             choices=[tuple(c) for c in q.get("choices") or []])
            for q in case.questions or [] if q.get("id")
        ]
        files, others = _attachments(case)
        xml = self._build("PARequest", ncpdp.build_pa_request, case, message_id,
                          pa_case_id=case.payer_case_id, questions=questions,
                          answers=[(k, str(v)) for k, v in answers.items()], attachments=files,
                          note=_letter_with(case.letter, others))
        return Outbound("ncpdp:PARequest", "request", self.content_type, xml, message_id)

    def appeal(self, case) -> Outbound:
        message_id = ncpdp.new_message_id()
        files, others = _attachments(case)
        xml = self._build("PAAppealRequest", ncpdp.build_pa_appeal_request, case, message_id,
                          pa_case_id=case.payer_case_id or f"RXHUB-PA-{case.pk}",
                          note=_letter_with(case.appeal_letter, others), attachments=files)
        return Outbound("ncpdp:PAAppealRequest", "appeal", self.content_type, xml, message_id)

    def cancel(self, case, note: str = "") -> Outbound:
        message_id = ncpdp.new_message_id()
        xml = self._build("PACancelRequest", ncpdp.build_pa_cancel_request, case, message_id,
                          pa_case_id=case.payer_case_id or f"RXHUB-PA-{case.pk}", note=note[:2000])
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
