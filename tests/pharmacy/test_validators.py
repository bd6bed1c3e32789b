import pytest
from django.core.exceptions import ValidationError

from pharmacy import validators as v


@pytest.mark.parametrize(
    ("npi", "valid"),
    [
        ("1234567893", True),  # CMS worked example of the 80840-prefixed Luhn check
        ("1245319599", True),
        ("1234567890", False),  # wrong check digit
        ("123456789", False),  # 9 digits
        ("12345678931", False),  # 11 digits
        ("12345X7893", False),
        ("", False),
    ],
)
def test_npi_check_digit(npi, valid):
    assert v.npi_is_valid(npi) is valid
    if valid:
        v.validate_npi(npi)
    else:
        with pytest.raises(ValidationError):
            v.validate_npi(npi)


@pytest.mark.parametrize(
    ("dea", "last_name", "code"),
    [
        ("AB1234563", None, None),  # (1+3+5) + 2×(2+4+6) = 33 → check digit 3
        ("BS1234563", "Smith", None),
        ("AB1234564", None, "dea_checksum"),
        ("AB123456", None, "dea_format"),
        ("A11234563", None, "dea_format"),
        ("1B1234563", None, "dea_format"),
        ("ZB1234563", None, "dea_registrant_type"),
        ("BJ1234563", "Smith", "dea_last_name"),
        ("A91234563", "Acme", None),  # 9 for business registrants
    ],
)
def test_dea_number_rules(dea, last_name, code):
    if code is None:
        v.validate_dea_number(dea, last_name=last_name)
        assert v.dea_is_valid(dea, last_name)
    else:
        with pytest.raises(ValidationError) as exc:
            v.validate_dea_number(dea, last_name=last_name)
        assert exc.value.code == code


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("0002-3227-30", "00002322730"),  # 4-4-2 → pad labeler
        ("50090-347-01", "50090034701"),  # 5-3-2 → pad product
        ("68180-0513-1", "68180051301"),  # 5-4-1 → pad package
        ("00093-7146-56", "00093714656"),  # already 5-4-2
        ("00093714656", "00093714656"),
    ],
)
def test_ndc_normalised_to_11_digits(raw, normalised):
    assert v.normalize_ndc(raw) == normalised


@pytest.mark.parametrize(("raw", "code"), [("0093714656", "ndc_ambiguous"), ("12-34-56", "ndc_format"),
                                           ("abcde-fghi-jk", "ndc_format"), ("", "ndc_format"),
                                           ("50090-347-0", "ndc_format")])
def test_ndc_bad_forms_refused(raw, code):
    with pytest.raises(ValidationError) as exc:
        v.normalize_ndc(raw)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("value", "ok"), [("1234567", True), ("123456", False), ("12345678", False), ("12a4567", False)]
)
def test_ncpdp_provider_id_is_seven_digits(value, ok):
    if ok:
        v.validate_ncpdp_id(value)
    else:
        with pytest.raises(ValidationError):
            v.validate_ncpdp_id(value)


@pytest.mark.parametrize(
    ("code", "ok"),
    [("E11.9", True), ("E119", True), ("I10", True), ("e11.65", True), ("Z99.999", False), ("E11", True),
     ("XYZ", False), ("", False), ("E00-E89", False)],
)
def test_icd10cm_codes_checked_against_shipped_code_set(code, ok):
    if ok:
        v.validate_icd10cm(code)
    else:
        with pytest.raises(ValidationError):
            v.validate_icd10cm(code)


def test_icd10cm_normalisation_adds_the_dot_and_description():
    assert v.normalize_icd10cm(" e119 ") == "E11.9"
    assert "diabetes" in v.icd10cm_description("E11.9").lower()


@pytest.mark.parametrize(("code", "ok"), [("2823-3", True), ("4548-4", True), ("2160-0", True), ("14334-7", True),
                                          ("2823-4", False), ("2823", False), ("ABCD-1", False)])
def test_loinc_check_digit(code, ok):
    assert v.loinc_is_valid(code) is ok


@pytest.mark.parametrize(("value", "ok"), [("610014", True), ("61001", False), ("6100144", False), ("61001A", False)])
def test_bin_is_six_digits(value, ok):
    if ok:
        v.validate_bin(value)
    else:
        with pytest.raises(ValidationError):
            v.validate_bin(value)
