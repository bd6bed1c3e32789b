"""Free-text intake as patients and owners write: short forms and abbreviations, names in any case,
several patients of one owner, partly recognised messages to triage with what was found, and SMS
opt-out keywords (CTIA: STOP, UNSUBSCRIBE; Spanish PARAR) withdrawing consent."""
from __future__ import annotations

import pytest

from pharmacy.models import OutboxMessage, Patient
from refills.intake import Candidate, decide_intake, is_opt_out
from refills.models import IntakeMessage, RefillRequest
from tests.factories import PatientFactory

from .test_intake import send


def cand(pid, drug, *, patient_id=1, name="John", brands=(), animal=False):
    return Candidate(prescription_id=pid, patient_id=patient_id, patient_name=name, is_animal=animal, drug_name=drug,
                     brand_names=tuple(brands), synonyms=())


OWNER = [cand(1, "phenobarbital", patient_id=1, name="Biscuit", animal=True),
         cand(2, "meloxicam", patient_id=2, name="Mochi", animal=True),
         cand(3, "carprofen", patient_id=1, name="Biscuit", animal=True),
         cand(4, "carprofen", patient_id=3, name="Rex", animal=True)]


@pytest.mark.parametrize(("text", "opened"), [
    ("phenobarb for biscuit", [1]),               # short form, lower-case pet name
    ("PHENOBARB FOR BISCUIT PLS", [1]),           # any case
    ("Mochi needs her metacam", [2]),             # vet brand → meloxicam
    ("refill carprofen for Rex", [4]),            # the name picks among two pets on carprofen
    ("carprofen for biscuit and rex", [3, 4]),    # several patients of one owner in one message
    ("phenobarb and metacam please", [1, 2]),
])
def test_owner_messages(text, opened):
    decision = decide_intake(text, OWNER)
    assert sorted(m.prescription_id for m in decision.matches) == opened, decision.reason


@pytest.mark.parametrize(("text", "drug"), [
    ("need my HCTZ", "hydrochlorothiazide"), ("levo refill", "levothyroxine"), ("more lasix", "furosemide"),
    ("refill my gaba", "gabapentin"), ("hctz 25", "hydrochlorothiazide")])
def test_abbreviations_and_short_forms(text, drug):
    candidates = [cand(1, drug), cand(2, "atorvastatin")]
    decision = decide_intake(text, candidates)
    assert [m.prescription_id for m in decision.matches] == [1], decision.reason
    assert decision.matches[0].how == "short form"


def test_partly_recognised_goes_to_triage_with_what_was_found():
    decision = decide_intake("refill carprofen and heartgard for Rex", OWNER)
    assert decision.matches == []
    assert "found carprofen (Rex)" in decision.reason and "heartgard" in decision.reason


def test_two_pets_on_one_drug_without_a_name_still_ask():
    assert decide_intake("carprofen refill", OWNER).matches == []


@pytest.mark.parametrize(("text", "stop"), [("STOP", True), ("stop", True), ("Unsubscribe", True), ("PARAR", True),
                                            ("stop.", True), ("please stop the metformin", False),
                                            ("STOP my lisinopril", False)])
def test_opt_out_keywords(text, stop):
    assert is_opt_out(text) is stop


def test_sms_stop_withdraws_consent_with_history_and_confirms_once(api_client_for, make_user, db):
    ana = PatientFactory(first_name="Ana", phone="617-555-0177", consent_to_messages=True,
                         contact_preference="sms")
    integrator = make_user("integrator")
    ana.preferred_pharmacy.integrator_users.add(integrator)
    api = api_client_for(user=integrator)
    body = send(api, "STOP", sender="+1 617 555 0177")
    ana.refresh_from_db()
    assert ana.consent_to_messages is False
    latest = Patient.history.filter(id=ana.pk).order_by("-history_id").first()
    assert latest.history_change_reason.startswith("SMS opt-out") and latest.consent_to_messages is False
    msg = IntakeMessage.objects.get(pk=body["id"])
    assert msg.status == "resolved" and "consent to messages withdrawn" in msg.triage_reason
    assert not RefillRequest.objects.exists()
    confirmations = OutboxMessage.objects.filter(kind="sms:opt-out")
    assert confirmations.count() == 1 and "unsubscribed" in confirmations.get().payload
    send(api, "PARAR", sender="+1 617 555 0177")  # already withdrawn: nothing more is sent
    assert OutboxMessage.objects.filter(kind="sms:opt-out").count() == 1
