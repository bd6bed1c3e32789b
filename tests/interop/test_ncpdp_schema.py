"""Every SCRIPT 2017071 builder variant against the official XSDs (NCPDP_XSD_DIR, a member's copy:
the schema is NCPDP copyrighted material and never in this repository). Skipped, with one line
saying so, when the variable is not set; the structural tests (test_ncpdp_structure.py) run always."""
from __future__ import annotations

import pytest

from pharmacy.interop import ncpdp as n
from tests.conftest import NCPDP_SKIPPED, NCPDP_XSD_DIR
from tests.interop.ncpdp_variants import VARIANTS

pytestmark = pytest.mark.skipif(not NCPDP_XSD_DIR, reason=NCPDP_SKIPPED)


@pytest.fixture(autouse=True)
def _plain_http():
    yield


@pytest.mark.parametrize(("name", "transaction", "builder", "kwargs"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_builder_variant_is_valid_against_the_official_schema(name, transaction, builder, kwargs):
    xml = builder(**kwargs)  # the package validates it on build too (SchemaInvalid)
    assert n.validate_against_xsd(xml, NCPDP_XSD_DIR) == []
    assert n.parse_message(xml).schema_errors == []


def test_schema_is_compiled_once_per_process():
    from pharmacy.interop.ncpdp import schema

    assert n.validate_against_xsd("<Message/>", NCPDP_XSD_DIR)  # an invalid document has errors
    count = schema.compile_count()
    for _name, _tx, builder, kwargs in VARIANTS[:5]:
        n.validate_against_xsd(builder(**kwargs), NCPDP_XSD_DIR)
    assert schema.compile_count() == count
