"""What a pharmacist reads off older and vendor C-CDA, placeholders and allergy statements.

Pure tests (no database). Templates: HL7 CCD 1.0 (2.16.840.1.113883.10.20.1.*), also carried by
HITSP C32; C-CDA R2.1 (2.16.840.1.113883.10.20.22.*). SNOMED CT 409137002 "No known drug allergy",
716186003 "No known allergy", 429625007 "No known food allergy".
"""
from __future__ import annotations

import json

import pytest

from pharmacy.interop.ccda import read_ccda
from pharmacy.interop.clinical import AllergyData, ClinicalRecord, finish_allergies, placeholder
from pharmacy.interop.detect import read_clinical
from pharmacy.interop.fhir import read_fhir


@pytest.fixture(autouse=True)
def _plain_http():
    yield


C = "2.16.840.1.113883.10.20.1"
T = "2.16.840.1.113883.10.20.22"


def _doc(body: str, *, templates: str = f'<templateId root="{C}"/>') -> str:
    return f"""<?xml version="1.0"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>{templates}
  <id root="1.2.3" extension="D1"/><code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>
  <effectiveTime value="20090101"/>
  <recordTarget><patientRole><id root="1.2.3.4" extension="P-9"/>
    <patient><name><given>Ann</given><family>Lee</family></name>
    <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/><birthTime value="19500101"/>
    </patient></patientRole></recordTarget>
  {body}
</ClinicalDocument>"""


def _sections(*sections: str) -> str:
    return "<component><structuredBody>" + "".join(f"<component>{s}</component>" for s in sections) + \
        "</structuredBody></component>"


C32_ALLERGIES = f"""<section><templateId root="{C}.2"/><code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Allergies</title><text>Sulfa: hives</text>
  <entry><act classCode="ACT" moodCode="EVN"><templateId root="{C}.27"/><statusCode code="active"/>
    <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <templateId root="{C}.18"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
      <statusCode code="completed"/>
      <value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96" displayName="Drug allergy"/>
      <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT">
        <code code="10180" codeSystem="2.16.840.1.113883.6.88" displayName="Sulfamethoxazole"/>
        <name>Sulfa drugs</name></playingEntity></participantRole></participant>
      <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS" moodCode="EVN">
        <templateId root="{C}.54"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="CD" code="247472004" codeSystem="2.16.840.1.113883.6.96" displayName="Hives"/>
        <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
          <templateId root="{C}.55"/><code code="SEV" codeSystem="2.16.840.1.113883.5.4"/>
          <value xsi:type="CD" code="6736007" codeSystem="2.16.840.1.113883.6.96" displayName="moderate"/>
        </observation></entryRelationship></observation></entryRelationship>
      <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
        <templateId root="{C}.39"/><code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CE" code="55561003" codeSystem="2.16.840.1.113883.6.96" displayName="Active"/>
      </observation></entryRelationship>
    </observation></entryRelationship></act></entry></section>"""

C32_MEDS = f"""<section><templateId root="{C}.8"/><code code="10160-0" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Medications</title><text/>
  <entry><substanceAdministration classCode="SBADM" moodCode="EVN"><templateId root="{C}.24"/>
    <templateId root="2.16.840.1.113883.3.88.11.83.8"/><statusCode code="active"/>
    <effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A"><period value="6" unit="h"/>
    </effectiveTime>
    <routeCode code="C38288" codeSystem="2.16.840.1.113883.3.26.1.1" displayName="ORAL"/>
    <doseQuantity value="1"/>
    <consumable><manufacturedProduct><templateId root="{C}.53"/><manufacturedMaterial>
      <code nullFlavor="OTH"><originalText>Cephalexin 500 mg capsule</originalText>
        <translation code="309114" codeSystem="2.16.840.1.113883.6.88" displayName="cephalexin 500 MG Oral Capsule"/>
      </code><name>Keflex</name></manufacturedMaterial></manufacturedProduct></consumable>
  </substanceAdministration></entry></section>"""

C32_PROBLEMS = f"""<section><templateId root="{C}.11"/><code code="11450-4" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Problems</title><text/>
  <entry><act classCode="ACT" moodCode="EVN"><templateId root="{C}.27"/><statusCode code="active"/>
    <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="{C}.28"/>
      <code code="64572001" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
      <value xsi:type="CD" code="44054006" codeSystem="2.16.840.1.113883.6.96" displayName="Diabetes mellitus type 2"/>
    </observation></entryRelationship></act></entry></section>"""


def test_ccd_1_0_c32_templates_are_read():
    record = read_ccda(_doc(_sections(C32_ALLERGIES, C32_MEDS, C32_PROBLEMS)))
    assert record.message_type == "CCD"
    [allergy] = record.allergies
    assert (allergy.substance, allergy.code, allergy.category, allergy.reaction, allergy.severity,
            allergy.status) == ("Sulfamethoxazole", "10180", "drug", ["Hives"], "moderate", "active")
    [med] = record.medications
    # RxNorm only in the translation (main code nullFlavor OTH); PIVL 6 h institution-specified = QID
    assert (med.code, med.code_system, med.text, med.frequency, med.route) == (
        "309114", "rxnorm", "Cephalexin 500 mg capsule", "qid", "oral")
    assert [p.code for p in record.problems] == ["44054006"]
    assert record.no_known_allergies is False


def test_utf8_bom_and_a_txt_name_are_read_by_content():
    data = b"\xef\xbb\xbf" + _doc(_sections(C32_MEDS)).encode()
    fmt, [record] = read_clinical(data)
    assert fmt == "ccda" and record.medications[0].code == "309114"


def test_non_xml_body_reads_the_header_and_says_there_are_no_sections():
    body = '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">JVBERi0=</text>' \
           '</nonXMLBody></component>'
    record = read_ccda(_doc(body))
    assert record.patient.family == "Lee" and record.patient.given == "Ann"
    assert record.medications == [] and record.medications_unknown and record.allergies_unknown
    assert any("nonXMLBody (application/pdf)" in w and "no structured sections" in w for w in record.warnings)


def _med_entry_named(text: str) -> str:
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN"><templateId root="{T}.4.16"/>
      <statusCode code="active"/><consumable><manufacturedProduct><manufacturedMaterial>
      <code nullFlavor="NI"><originalText>{text}</originalText></code></manufacturedMaterial>
      </manufacturedProduct></consumable></substanceAdministration></entry>"""


def _med_section(entries: str, text: str = "", null: str = "") -> str:
    nf = f' nullFlavor="{null}"' if null else ""
    return f"""<section{nf}><templateId root="{T}.2.1.1"/><code code="10160-0" codeSystem="2.16.840.1.113883.6.1"/>
      <title>Medications</title><text>{text}</text>{entries}</section>"""


@pytest.mark.parametrize(
    "text",
    ["No medication data is applicable", "No data", "None recorded", "No information", "Not applicable",
     "No Information Available", "Unknown", "not on file"],
)
def test_medication_placeholders_are_not_medications_and_mean_unknown(text):
    record = read_ccda(_doc(_sections(_med_section(_med_entry_named(text)))))
    assert record.medications == []
    assert record.medications_unknown is True
    assert any("placeholder" in w for w in record.warnings)


@pytest.mark.parametrize("text", ["No known medications", "None", "Patient not taking any medications"])
def test_no_medications_is_an_empty_list_not_a_medication(text):
    record = read_ccda(_doc(_sections(_med_section(_med_entry_named(text)))))
    assert record.medications == [] and record.medications_unknown is False


def test_section_with_null_flavor_or_no_information_text_is_unknown():
    record = read_ccda(_doc(_sections(_med_section("", null="NI"))))
    assert record.medications_unknown and record.medications == []
    record = read_ccda(_doc(_sections(_med_section("", text="No information"))))
    assert record.medications_unknown and record.no_known_allergies is False


def test_placeholder_classifier_keeps_real_content():
    for real in ["Aspirin 81 mg", "warfarin", "Nothing by mouth after midnight 2 days", "Penicillin"]:
        assert placeholder(real) == ""


def _allergy_section(*obs: str, null: str = "") -> str:
    nf = f' nullFlavor="{null}"' if null else ""
    entries = "".join(f"""<entry><act classCode="ACT" moodCode="EVN"><templateId root="{T}.4.30"/>
      <statusCode code="active"/><entryRelationship typeCode="SUBJ">{o}</entryRelationship></act></entry>"""
                      for o in obs)
    return f"""<section{nf}><templateId root="{T}.2.6.1"/><code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/>
      <title>Allergies</title><text/>{entries}</section>"""


def _allergy_obs(value_code: str, *, negated: bool = False, allergen: str = "", extra: str = "") -> str:
    neg = ' negationInd="true"' if negated else ""
    participant = ""
    if allergen:
        participant = f"""<participant typeCode="CSM"><participantRole classCode="MANU">
          <playingEntity classCode="MMAT">{allergen}</playingEntity></participantRole></participant>"""
    return f"""<observation classCode="OBS" moodCode="EVN"{neg}><templateId root="{T}.4.7"/>
      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
      <value xsi:type="CD" code="{value_code}" codeSystem="2.16.840.1.113883.6.96"/>{participant}{extra}
      </observation>"""


PENICILLIN = '<code code="7980" codeSystem="2.16.840.1.113883.6.88" displayName="Penicillin G"/>'
DRUG_GENERIC = '<code code="410942007" codeSystem="2.16.840.1.113883.6.96" displayName="Drug or medicament"/>'
FOOD_GENERIC = '<code code="255620007" codeSystem="2.16.840.1.113883.6.96" displayName="Food"/>'


@pytest.mark.parametrize(
    ("obs", "nkda"),
    [
        (_allergy_obs("409137002"), True),  # value: No known drug allergy
        (_allergy_obs("716186003"), True),  # value: No known allergy
        (_allergy_obs("419511003", negated=True, allergen=DRUG_GENERIC), True),  # negated drug propensity
        (_allergy_obs("416098002", negated=True), True),  # negated "drug allergy", no allergen
        (_allergy_obs("429625007"), False),  # No known food allergy
        (_allergy_obs("428607008"), False),  # No known environmental allergy
        (_allergy_obs("414285001", negated=True, allergen=FOOD_GENERIC), False),  # negated food allergy
        (_allergy_obs("418471000", negated=True), False),  # negated propensity to food
    ],
)
def test_nkda_only_from_drug_or_all_substance_negation(obs, nkda):
    record = read_ccda(_doc(_sections(_allergy_section(obs))))
    assert record.no_known_allergies is nkda
    assert record.allergies == []


def test_no_known_food_allergy_next_to_an_active_penicillin_allergy():
    record = read_ccda(_doc(_sections(_allergy_section(
        _allergy_obs("429625007"), _allergy_obs("416098002", allergen=PENICILLIN)))))
    assert record.no_known_allergies is False
    assert [(a.substance, a.status or "active") for a in record.allergies] == [("Penicillin G", "active")]


def test_nkda_is_ignored_while_a_drug_allergy_is_active():
    record = read_ccda(_doc(_sections(_allergy_section(
        _allergy_obs("409137002"), _allergy_obs("416098002", allergen=PENICILLIN)))))
    assert record.no_known_allergies is False
    assert any("no known allergies' is ignored" in w for w in record.warnings)


def test_resolved_allergy_is_not_active_and_does_not_cancel_nkda():
    status = f"""<entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS" moodCode="EVN">
      <templateId root="{T}.4.28"/><code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/>
      <value xsi:type="CE" code="413322009" codeSystem="2.16.840.1.113883.6.96"/></observation></entryRelationship>"""
    record = read_ccda(_doc(_sections(_allergy_section(
        _allergy_obs("409137002"), _allergy_obs("416098002", allergen=PENICILLIN, extra=status)))))
    assert [a.status for a in record.allergies] == ["resolved"]
    assert record.no_known_allergies is True


def test_allergy_section_no_information_is_unknown_not_nka():
    record = read_ccda(_doc(_sections(_allergy_section(null="NI"))))
    assert record.no_known_allergies is False and record.allergies_unknown is True


def test_ccda_criticality_is_not_severity():
    crit = f"""<entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS" moodCode="EVN">
      <templateId root="{T}.4.145"/><code code="82606-5" codeSystem="2.16.840.1.113883.6.1"/>
      <value xsi:type="CD" code="CRITH" codeSystem="2.16.840.1.113883.5.1063"/></observation></entryRelationship>"""
    [a] = read_ccda(_doc(_sections(_allergy_section(
        _allergy_obs("416098002", allergen=PENICILLIN, extra=crit))))).allergies
    assert (a.criticality, a.severity) == ("high", "")


def _fhir_allergy(**kw) -> dict:
    base = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p"},
            "clinicalStatus": {"coding": [{"code": "active"}]}}
    base.update(kw)
    return base


def test_fhir_criticality_high_is_not_severe():
    a = read_fhir(_fhir_allergy(code={"text": "penicillin"}, criticality="high")).allergies[0]
    assert (a.criticality, a.severity) == ("high", "")
    assert read_clinical(json.dumps(_fhir_allergy(code={"text": "penicillin"}, criticality="high",
                                                  reaction=[{"manifestation": [{"text": "rash"}],
                                                             "severity": "mild"}])).encode())[1][0] \
        .allergies[0].severity == "mild"


def test_fhir_resolved_allergy_and_ips_absent_codes():
    ips = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
    unknown = read_fhir(_fhir_allergy(code={"coding": [{"system": ips, "code": "no-allergy-info"}]}))
    assert unknown.no_known_allergies is False and unknown.allergies_unknown is True
    nkda = read_fhir(_fhir_allergy(code={"coding": [{"system": ips, "code": "no-known-allergies"}]}))
    assert nkda.no_known_allergies is True
    food = read_fhir(_fhir_allergy(code={"coding": [{"system": ips, "code": "no-known-food-allergies"}]}))
    assert food.no_known_allergies is False
    resolved = read_fhir(_fhir_allergy(code={"text": "penicillin"},
                                       clinicalStatus={"coding": [{"code": "resolved"}]})).allergies[0]
    assert resolved.status == "resolved"


def test_fhir_no_known_food_allergy_text_and_category_food_are_not_nkda():
    assert read_fhir(_fhir_allergy(code={"text": "No known food allergy"})).no_known_allergies is False
    assert read_fhir(_fhir_allergy(code={"coding": [{"system": "http://snomed.info/sct", "code": "716186003"}]},
                                   category=["food"])).no_known_allergies is False
    assert read_fhir(_fhir_allergy(code={"text": "NKDA"})).no_known_allergies is True


def test_fhir_medication_placeholder_is_not_a_medication():
    ips = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
    record = read_fhir({"resourceType": "MedicationStatement", "status": "active",
                        "subject": {"reference": "Patient/p"},
                        "medicationCodeableConcept": {"coding": [{"system": ips, "code": "no-medication-info"}]}})
    assert record.medications == [] and record.medications_unknown is True
    record = read_fhir({"resourceType": "MedicationStatement", "status": "active",
                        "subject": {"reference": "Patient/p"}, "medicationCodeableConcept": {"text": "No data"}})
    assert record.medications == [] and record.medications_unknown is True


def test_finish_allergies_rule_is_shared():
    record = ClinicalRecord(format="text", no_known_allergies=True,
                            allergies=[AllergyData(substance="peanut", category="food", status="active")])
    finish_allergies(record)
    assert record.no_known_allergies is True  # a food allergy does not contradict NKDA
    record.allergies.append(AllergyData(substance="codeine", category="drug", status="inactive"))
    finish_allergies(record)
    assert record.no_known_allergies is True  # inactive
    record.allergies.append(AllergyData(substance="codeine", category="drug"))
    finish_allergies(record)
    assert record.no_known_allergies is False
