"""A document that says "no information" opens no missing-from-EHR discrepancy (the list is unknown,
not empty: C-CDA R2.1 nullFlavor NI / placeholder entries), and never sets no-known-allergies."""
from __future__ import annotations

from pathlib import Path

from reconciliation import services
from reconciliation.models import ReconciliationTask

DATA = Path(__file__).parent / "data"

PLACEHOLDER_MEDS = """<component><section>
      <templateId root="2.16.840.1.113883.10.20.22.2.11.1" extension="2015-08-01"/>
      <code code="10183-2" codeSystem="2.16.840.1.113883.6.1"/><title>Discharge Medications</title>
      <text>No medication data is applicable</text>
      <entry><substanceAdministration classCode="SBADM" moodCode="INT">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/><statusCode code="active"/>
        <consumable><manufacturedProduct classCode="MANU"><manufacturedMaterial>
          <code nullFlavor="NI"><originalText>No medication data is applicable</originalText></code>
        </manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration></entry>
    </section></component>
    <component><section nullFlavor="NI">
      <templateId root="2.16.840.1.113883.10.20.22.2.6.1" extension="2015-08-01"/>
      <code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/><title>Allergies</title>
      <text>No information</text></section></component>"""


def _no_information_document() -> bytes:
    text = (DATA / "discharge_summary.xml").read_text()
    start = text.index("<component><structuredBody>") + len("<component><structuredBody>")
    end = text.index("</structuredBody></component>")
    return (text[:start] + PLACEHOLDER_MEDS + text[end:]).encode()


def test_no_information_document_opens_no_missing_from_ehr(linked_ada):
    result = services.ingest(channel="http_document", payload=_no_information_document())
    assert result.ack_code == "AA" and result.message.status == "processed", result.message.error
    # two active prescriptions, a list that says "no information": nothing is missing from it
    assert not ReconciliationTask.objects.filter(patient=linked_ada).exists()


def test_the_same_document_with_real_entries_still_finds_missing(linked_ada):
    result = services.ingest(channel="http_document", payload=(DATA / "discharge_summary.xml").read_bytes())
    assert result.ack_code == "AA"
    task = ReconciliationTask.objects.get(patient=linked_ada)
    assert task.discrepancies.filter(kind="missing_from_ehr").exists()
    assert task.no_known_allergies is False
