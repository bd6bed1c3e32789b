"""NCPDP_XSD_DIR through settings (issue 12): settings reads the variable once into
RXHUB["NCPDP_XSD_DIR"]; the core hands the folder to the pure codec (PharmacyConfig.ready(), and
again when a test overrides RXHUB). The codec reads neither settings nor the environment."""
import inspect

from django.conf import settings
from django.test import override_settings

from pharmacy.interop.ncpdp import schema

TOY_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="Message"/></xs:schema>
"""


def test_the_codec_validates_against_the_folder_settings_name(tmp_path):
    (tmp_path / "transport.xsd").write_text(TOY_XSD)
    before = schema.configured_dir()
    assert before == settings.RXHUB["NCPDP_XSD_DIR"].strip()  # handed down by PharmacyConfig.ready()
    with override_settings(RXHUB={**settings.RXHUB, "NCPDP_XSD_DIR": str(tmp_path)}):
        assert schema.configured_dir() == str(tmp_path)
        assert schema.validate_against_xsd("<Message/>") == []
        assert schema.validate_against_xsd("<Other/>")  # refused by the toy schema
    assert schema.configured_dir() == before
    with override_settings(RXHUB={**settings.RXHUB, "NCPDP_XSD_DIR": ""}):
        assert schema.validate_against_xsd("<Other/>") is None  # not configured: not checked


def test_the_codec_reads_no_environment_and_no_settings():
    source = inspect.getsource(schema)
    assert "os.environ" not in source and "getenv" not in source and "django" not in source
