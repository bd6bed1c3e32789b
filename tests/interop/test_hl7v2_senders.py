"""HL7 v2 as senders write it (HL7 v2.5.1 ch. 2.5.4 message delimiters, ch. 4A pharmacy orders)."""
from __future__ import annotations

import pytest

from pharmacy.interop.hl7v2 import read_hl7v2


@pytest.fixture(autouse=True)
def _plain_http():
    yield


def _read(text: str):
    return list(read_hl7v2(text.encode()))[0]


@pytest.mark.parametrize(
    ("field", "comp", "rep", "esc", "sub"),
    [("|", "^", "~", "\\", "&"), ("$", "%", "~", "\\", "&"), ("#", "@", "!", "\\", "*"), ("|", "!", "~", "?", "&")],
)
def test_any_encoding_characters_msh_declares(field, comp, rep, esc, sub):
    f, c = field, comp
    text = (f"MSH{f}{comp}{rep}{esc}{sub}{f}LAB{f}HOSP{f}RX{f}PH{f}20240101{f}{f}ADT{c}A01{f}C1{f}P{f}2.5\r"
            f"PID{f}1{f}{f}123{c}{c}{c}HOSP{c}MR{f}{f}EVERYWOMAN{c}EVE{f}{f}19700101{f}F\r"
            f"AL1{f}1{f}DA{f}{c}PENICILLIN{f}SV{f}HIVES{rep}RASH\r")
    record = _read(text)
    assert record.message_type == "ADT^A01"
    assert (record.patient.family, record.patient.given) == ("EVERYWOMAN", "EVE")
    assert record.allergies[0].substance == "PENICILLIN"
    assert record.allergies[0].reaction == ["HIVES", "RASH"]


@pytest.mark.parametrize("null", ['""', "null", "NULL"])
def test_literal_null_name_parts_are_dropped(null):
    record = _read(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||9^^^H^MR||MILLER^JOEY~{null}^{null}||"
                   f"19471010|M\rORC|NW|1||||||||||123^{null}^SMITH\rRXE||1^ASPIRIN 81 MG^L|1\r")
    assert (record.patient.family, record.patient.given) == ("MILLER", "JOEY")
    record = _read(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||9^^^H^MR||MILLER^{null}||19471010|M\r")
    assert (record.patient.family, record.patient.given) == ("MILLER", "")


ORDER = ("MSH|^~\\&|PHARM|HOSP|RX|PH|20240101||RDS^O13|C9|P|2.5\rPID|1||9^^^H^MR||DOE^JANE||19800101|F\r"
         "ORC|RE|O1\r"
         "RXO|00047040230^Ampicillin 250 mg caps^NDC|250||mg|||^1 cap by mouth 4 times daily\r"
         "RXD|1|00093310905^Amoxicillin 250 mg caps^NDC|20240101|40|caps\r")


def test_rxo_and_rxd_naming_different_drugs_are_both_kept_the_dispensed_one_as_a_substitution():
    record = _read(ORDER)
    names = [(m.source, m.name) for m in record.medications]
    assert ("RXO", "Ampicillin 250 mg caps") in names and ("RXD", "Amoxicillin 250 mg caps") in names
    dispensed = next(m for m in record.medications if m.source == "RXD")
    assert "substitution" in dispensed.text and dispensed.quantity == "40 caps"
    assert any("RXD-2 dispensed 'Amoxicillin 250 mg caps' differs" in w and "substitution" in w
               for w in record.warnings)


def test_same_drug_in_rxo_and_rxe_is_one_medication():
    record = _read("MSH|^~\\&|A|B|C|D|20240101||RDE^O11|1|P|2.5\rPID|1||9^^^H^MR||DOE^JANE\rORC|NW|1\r"
                   "RXO|197361^Amlodipine 5 MG^RXNORM|5||mg\rRXE||197361^Amlodipine 5 MG^RXNORM|5||mg\r")
    assert len(record.medications) == 1


@pytest.mark.parametrize(
    ("al1", "nkda"),
    [("AL1|1|DA|^NKDA", True), ("AL1|1||^No Known Allergies", True), ("AL1|1|FA|^NKFA", False),
     ("AL1|1|FA|^No known food allergies", False), ("AL1|1|EA|^No known environmental allergy", False),
     ("AL1|1|DA|409137002^No known drug allergy^SCT", True)],
)
def test_hl7_no_known_allergy_forms(al1, nkda):
    record = _read(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||9^^^H^MR||DOE^JANE\r{al1}\r")
    assert record.no_known_allergies is nkda
    assert record.allergies == []


def test_hl7_nkda_is_ignored_beside_an_active_drug_allergy():
    record = _read("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||9^^^H^MR||DOE^JANE\r"
                   "AL1|1|DA|^NKDA\rAL1|2|DA|^PENICILLIN|SV|HIVES\r")
    assert record.no_known_allergies is False
    assert [(a.substance, a.severity) for a in record.allergies] == [("PENICILLIN", "severe")]
