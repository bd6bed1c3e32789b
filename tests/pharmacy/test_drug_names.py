"""One drug-name normaliser in the core: names as pharmacists and EHRs write them (salt forms, dose
forms, strengths) reach the same catalog drug."""
import pytest

from pharmacy.rules.drug_names import default_catalog, name_strength, normalise_name, normalise_strength


@pytest.mark.parametrize(("written", "key"), [
    ("DOXYCYCLINE HYCLATE 100MG", "doxycycline"), ("doxycycline hyclate 100 mg capsule", "doxycycline"),
    ("Doxycycline 100 mg cap", "doxycycline"), ("Metoprolol Succinate ER 50 MG", "metoprolol"),
    ("LISINOPRIL 10MG TAB", "lisinopril"), ("Amoxicillin/Clavulanate 875-125 mg", "amoxicillin clavulanate"),
    ("amoxicillin and clavulanate potassium", "amoxicillin clavulanate"),
    ("Fluticasone propionate 50 mcg nasal spray", "fluticasone"), ("atorvastatin calcium 40 mg tablet", "atorvastatin"),
])
def test_written_names_share_one_key(written, key):
    assert normalise_name(written) == key


@pytest.mark.parametrize(("written", "catalog_name"), [
    ("DOXYCYCLINE HYCLATE 100MG", "doxycycline hyclate"), ("Vibramycin 100 mg", "doxycycline hyclate"),
    ("Amoxicillin/Clavulanate 875-125 mg", "amoxicillin and clavulanate potassium"),
])
def test_catalog_names_for_what_people_write(written, catalog_name):
    assert catalog_name in default_catalog().catalog_names(written)


@pytest.mark.parametrize(("value", "strength"), [("100MG", "100 mg"), ("100 mg capsule", "100 mg"),
                                                 ("0.50 mg", "0.5 mg"), ("", "")])
def test_strengths_compare_written_either_way(value, strength):
    assert normalise_strength(value) == strength


def test_strength_inside_a_name():
    assert name_strength("DOXYCYCLINE HYCLATE 100MG") == "100 mg" and name_strength("doxycycline") == ""


@pytest.mark.django_db
def test_catalog_search_finds_the_drug_as_written():
    from django.core.management import call_command

    from pharmacy.selectors import drugs_matching

    call_command("load_drug_catalog", verbosity=0)
    (first, *_) = drugs_matching("DOXYCYCLINE HYCLATE 100MG")
    assert (first.name, first.strength, first.dose_form) == ("doxycycline hyclate", "100 mg", "capsule")
    assert drugs_matching("zzzunknowndrug") == []
