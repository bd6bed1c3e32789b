"""Every variant of every SCRIPT 2017071 transaction the project builds, with realistic data.

Shared by the structural tests (tests/interop/test_ncpdp_structure.py, fixtures in
tests/data/ncpdp/structure/) and the schema tests (validated against NCPDP_XSD_DIR when set).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from pharmacy.interop import ncpdp as n

SENT = datetime(2025, 3, 4, 15, 16, 17, 250000, tzinfo=UTC)

PHARMACY_PARTY = n.Party("P", "1234563")
PRESCRIBER_PARTY = n.Party("D", "1234567893")
PAYER_PARTY = n.Party("PY", "610014")

TO_PRESCRIBER = n.Header(to=PRESCRIBER_PARTY, from_=PHARMACY_PARTY, message_id="MSG-PH-0001", sent_time=SENT,
                         rx_reference_number="RX778899", prescriber_order_number="PON-42")
TO_PHARMACY = n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="MSG-DR-0001", sent_time=SENT,
                       prescriber_order_number="PON-42")
REPLY_TO_PHARMACY = replace(TO_PHARMACY, relates_to_message_id="MSG-PH-0001")
REPLY_TO_PRESCRIBER = replace(TO_PRESCRIBER, relates_to_message_id="MSG-DR-0001")
TO_PAYER = n.Header(to=PAYER_PARTY, from_=PHARMACY_PARTY, message_id="MSG-PA-0001", sent_time=SENT)
FROM_PAYER = n.Header(to=PHARMACY_PARTY, from_=PAYER_PARTY, message_id="MSG-PY-0001", sent_time=SENT,
                      relates_to_message_id="MSG-PA-0001")

PATIENT = n.PatientInfo(
    last_name="O'Brien & Sons", first_name="Zoë", gender="F", birth_date=date(1958, 7, 1),
    address_line1="12 Main St <Apt 3>", address_line2='Unit "B"', city="Springfield", state="IL",
    postal_code="62701", phone="(217) 555-0100",
)
DOG = n.PatientInfo(
    last_name="Smith", first_name="Rex", gender="M", birth_date=date(2019, 5, 5), is_animal=True,
    species="Canine", owner_last_name="Smith", owner_first_name="Jo", address_line1="4 Elm St",
    city="Springfield", state="IL", postal_code="62701", phone="217-555-0142",
)
PHARMACY = n.PharmacyInfo(ncpdp_id="1234563", npi="1003000126", name="Main Street Pharmacy",
                          phone="217-555-0199", address_line1="100 Main St", city="Springfield", state="IL",
                          postal_code="62701")
PRESCRIBER = n.PrescriberInfo(npi="1234567893", dea="AB1234563", state_license="036.123456",
                              last_name="Nguyen", first_name="An", phone="217-555-0123 x45",
                              address_line1="1 Clinic Way", city="Springfield", state="IL", postal_code="62704")
VET = n.PrescriberInfo(dea="BV1234563", state_license="VET-998", last_name="Herriot", first_name="James",
                       is_veterinarian=True, phone="2175550177", address_line1="9 Farm Rd", city="Springfield",
                       state="IL", postal_code="62711")
MED = n.MedicationInfo(
    description="Lisinopril 10 MG Oral Tablet", ndc="00093711101", quantity=Decimal("90"),
    quantity_unit="C48542", days_supply=90, written_date=date(2024, 3, 1), last_fill_date=date(2025, 2, 1),
    refills=3, sig_text="Take 1 tablet by mouth once daily; BP < 140/90 & recheck", substitutions="0",
)
MED_DISPENSED = replace(MED, description="Lisinopril 10mg tab (Lupin)", ndc="68180051301",
                        quantity=Decimal("45.5"), days_supply=45)
QUESTIONS = [
    n.PAQuestion(id="Q1", text="Has the patient tried metformin for ≥ 3 months?", type="Select",
                 choices=[("Y", "Yes"), ("N", "No")]),
    n.PAQuestion(id="Q2", text="Most recent HbA1c (%)", type="Numeric"),
    n.PAQuestion(id="Q3", text="Clinical notes", type="FreeText"),
    n.PAQuestion(id="Q4", text="Date of diagnosis", type="Date"),
]

PARTIES = {"patient": PATIENT, "pharmacy": PHARMACY, "prescriber": PRESCRIBER}
PA = {"patient": PATIENT, "prescriber": PRESCRIBER, "medication": MED}
PDF = n.Attachment("chart.pdf", "application/pdf", b"%PDF-1.4\x00\xff")

#: (variant name, transaction, builder, kwargs)
VARIANTS: list[tuple[str, str, object, dict]] = [
    ("NewRx", "NewRx", n.build_new_rx, dict(header=TO_PHARMACY, medication=MED, **PARTIES)),
    ("NewRx-veterinary", "NewRx", n.build_new_rx,
     dict(header=TO_PHARMACY, medication=MED, patient=DOG, pharmacy=PHARMACY, prescriber=VET)),
    ("RxRenewalRequest", "RxRenewalRequest", n.build_rx_renewal_request,
     dict(header=TO_PRESCRIBER, medication_prescribed=MED, requested_refills=3, **PARTIES)),
    ("RxRenewalRequest-dispensed", "RxRenewalRequest", n.build_rx_renewal_request,
     dict(header=TO_PRESCRIBER, medication_prescribed=MED, medication_dispensed=MED_DISPENSED, requested_refills=0,
          **PARTIES)),
    ("RxRenewalResponse-Approved", "RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=REPLY_TO_PHARMACY, response="Approved", note="OK for 1 year", medication=MED, **PARTIES)),
    ("RxRenewalResponse-ApprovedWithChanges", "RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=TO_PHARMACY, relates_to_message_id="MSG-PH-0001", response="ApprovedWithChanges",
          medication=replace(MED, refills=1), **PARTIES)),
    ("RxRenewalResponse-Denied", "RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=REPLY_TO_PHARMACY, response="Denied", reason_codes=["AM", "AD"],
          denial_reason="Needs a visit & labs", medication=MED, **PARTIES)),
    ("RxRenewalResponse-Replace", "RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=REPLY_TO_PHARMACY, response="Replace", medication=replace(MED, sig_text="Take 2 daily"),
          **PARTIES)),
    ("RxFill-Dispensed", "RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="Dispensed", medication_dispensed=MED_DISPENSED, **PARTIES)),
    ("RxFill-PartiallyDispensed", "RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="PartiallyDispensed", medication_dispensed=MED_DISPENSED,
          medication_prescribed=MED, note="Rest on Friday", **PARTIES)),
    ("RxFill-NotDispensed", "RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="NotDispensed", reason_code="BP", medication_prescribed=MED,
          **PARTIES)),
    ("CancelRx", "CancelRx", n.build_cancel_rx,
     dict(header=TO_PHARMACY, medication=MED, note="Stopped", **PARTIES)),
    ("CancelRxResponse-Approved", "CancelRxResponse", n.build_cancel_rx_response,
     dict(header=REPLY_TO_PRESCRIBER, response="Approved", note="Cancelled before fill")),
    ("CancelRxResponse-Denied", "CancelRxResponse", n.build_cancel_rx_response,
     dict(header=REPLY_TO_PRESCRIBER, response="Denied", reason_codes=["AR"], denial_reason="Already picked up")),
    ("Status", "Status", n.build_status, dict(header=REPLY_TO_PHARMACY, code="010", description="Accepted")),
    ("Error", "Error", n.build_error,
     dict(header=REPLY_TO_PHARMACY, code="900", description_code="1000", description="Bad <DaysSupply>")),
    ("Verify", "Verify", n.build_verify, dict(header=REPLY_TO_PHARMACY)),
    ("PAInitiationRequest", "PAInitiationRequest", n.build_pa_initiation_request,
     dict(header=TO_PAYER, pharmacy=PHARMACY, pa_reference_id="REF-1", **PA)),
    ("PARequest", "PARequest", n.build_pa_request,
     dict(header=TO_PAYER, pa_case_id="CASE-9", pa_reference_id="REF-1", questions=QUESTIONS,
          answers=[("Q1", "Y"), ("Q2", "8.1"), ("Q3", "A & B < C"), ("Q4", "2024-11-02")], attachments=[PDF],
          note="Letter of medical necessity: failed metformin.", **PA)),
    ("PAAppealRequest", "PAAppealRequest", n.build_pa_appeal_request,
     dict(header=TO_PAYER, pa_case_id="CASE-9", pa_reference_id="REF-1", note="Failed two formulary alternatives",
          **PA)),
    ("PACancelRequest", "PACancelRequest", n.build_pa_cancel_request,
     dict(header=TO_PAYER, pa_case_id="CASE-9", pa_reference_id="REF-1", reason_code="BY", note="No longer needed",
          **PA)),
    ("PAInitiationResponse-Open", "PAInitiationResponse", n.build_pa_initiation_response,
     dict(header=FROM_PAYER, status="Open", pa_case_id="CASE-9", pa_reference_id="REF-1", question_set=QUESTIONS,
          deadline_for_reply=datetime(2025, 3, 7, 12, 0, tzinfo=UTC), **PA)),
    ("PAInitiationResponse-Closed", "PAInitiationResponse", n.build_pa_initiation_response,
     dict(header=FROM_PAYER, status="Closed", pa_reference_id="REF-1", reason_codes=["CF"], note="No PA needed",
          **PA)),
    ("PAResponse-Approved", "PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Approved", pa_case_id="CASE-9", pa_reference_id="REF-1",
          authorization_number="AUTH-123", effective_date=date(2025, 3, 4), expiration_date=date(2026, 3, 3), **PA)),
    ("PAResponse-Denied", "PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Denied", pa_case_id="CASE-9", pa_reference_id="REF-1",
          denial_reasons=["Step therapy not met", "Quantity over limit"], **PA)),
    ("PAResponse-InProcess", "PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="InProcess", pa_case_id="CASE-9", pa_reference_id="REF-1",
          expected_response_date=date(2025, 3, 6), **PA)),
    ("PAResponse-Open", "PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Open", pa_case_id="CASE-9", pa_reference_id="REF-1", question_set=QUESTIONS[:1],
          deadline_for_reply=date(2025, 3, 9), **PA)),
    ("PAResponse-PartiallyDenied", "PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="PartiallyDenied", pa_case_id="CASE-9", pa_reference_id="REF-1",
          authorization_number="A-2", effective_date=date(2025, 3, 4), expiration_date=date(2025, 9, 4),
          denial_reasons=["Quantity reduced to 30"], **PA)),
    ("PAResponse-Closed", "PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Closed", pa_case_id="CASE-9", pa_reference_id="REF-1", reason_codes=["CE"],
          note="Member not eligible", **PA)),
    ("PAAppealResponse-Approved", "PAAppealResponse", n.build_pa_appeal_response,
     dict(header=FROM_PAYER, status="Approved", pa_case_id="CASE-9", pa_reference_id="REF-1",
          authorization_number="AUTH-9", **PA)),
    ("PAAppealResponse-Denied", "PAAppealResponse", n.build_pa_appeal_response,
     dict(header=FROM_PAYER, status="Denied", pa_case_id="CASE-9", pa_reference_id="REF-1",
          denial_reasons=["Upheld"], **PA)),
    ("PAAppealResponse-Open", "PAAppealResponse", n.build_pa_appeal_response,
     dict(header=FROM_PAYER, status="Open", pa_case_id="CASE-9", pa_reference_id="REF-1", question_set=QUESTIONS[1:3],
          deadline_for_reply=date(2025, 3, 9), **PA)),
    ("PAAppealResponse-Closed", "PAAppealResponse", n.build_pa_appeal_response,
     dict(header=FROM_PAYER, status="Closed", pa_case_id="CASE-9", pa_reference_id="REF-1", reason_codes=["CE"],
          **PA)),
    ("PAAppealResponse-PartiallyDenied", "PAAppealResponse", n.build_pa_appeal_response,
     dict(header=FROM_PAYER, status="PartiallyDenied", pa_case_id="CASE-9", pa_reference_id="REF-1",
          authorization_number="A-3", denial_reasons=["30 days only"], **PA)),
    ("PACancelResponse-Approved", "PACancelResponse", n.build_pa_cancel_response,
     dict(header=FROM_PAYER, status="Approved", pa_case_id="CASE-9", pa_reference_id="REF-1")),
    ("PACancelResponse-Denied", "PACancelResponse", n.build_pa_cancel_response,
     dict(header=FROM_PAYER, status="Denied", pa_case_id="CASE-9", pa_reference_id="REF-1", reason_codes=["BZ"])),
]


def build(variant: tuple[str, str, object, dict]) -> str:
    _name, _tx, builder, kwargs = variant
    return builder(**kwargs)


# A real SCRIPT NewRx for tests that only need some valid NCPDP payload in the outbox (every NCPDP
# outbox message is validated against the schema when NCPDP_XSD_DIR is set).
NEW_RX_PAYLOAD = build(next(v for v in VARIANTS if v[0] == "NewRx"))
