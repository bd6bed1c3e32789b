"""Free-text refill requests from patients and pet owners: POST /api/v1/refill-requests/intake/ —
brand names, dictionary synonyms, misspellings, an owner with two pets, unknown senders and
ambiguous messages landing in triage (never dropped)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from refills.intake import Candidate, decide_intake, match_medication, words_of
from refills.models import IntakeMessage, RefillRequest
from tests.factories import (
    AnimalFactory,
    DrugFactory,
    PatientFactory,
    PharmacyFactory,
    PrescriptionFactory,
    VeterinarianFactory,
)

URL = "/api/v1/refill-requests/intake/"


# --- pure matching ----------------------------------------------------------------------------------

def cand(pid, drug, *, patient_id=1, name="John", brands=(), synonyms=(), animal=False):
    return Candidate(prescription_id=pid, patient_id=patient_id, patient_name=name, is_animal=animal, drug_name=drug,
                     brand_names=tuple(brands), synonyms=tuple(synonyms))


@pytest.mark.parametrize(("text", "how", "min_score"), [
    ("Please refill my lisinopril", "generic", 1.0),
    ("can I get more Zestril pls", "brand", 1.0),
    ("need a refil of lisinoprill asap", "fuzzy", 0.8),
    ("out of my lisnopril", "fuzzy", 0.8),
    ("refill prinivil", "synonym", 0.95),
])
def test_match_medication_names_brands_synonyms_and_misspellings(text, how, min_score):
    c = cand(1, "lisinopril", brands=["Zestril"], synonyms=["prinivil"])
    m = match_medication(words_of(text), c)
    assert m.how == how and m.score >= min_score


def test_everyday_words_are_not_taken_for_drugs():
    c = cand(1, "ramipril")
    assert match_medication(words_of("please refill my pills, thanks"), c).score == 0


def test_two_drugs_named_open_two_requests():
    decision = decide_intake("refill lipitor and metformn please",
                             [cand(1, "atorvastatin", brands=["Lipitor"]), cand(2, "metformin"), cand(3, "lisinopril")])
    assert sorted(m.prescription_id for m in decision.matches) == [1, 2]
    assert 0.8 <= decision.confidence < 1.0  # the misspelling lowers the confidence


def test_pet_name_picks_among_an_owners_animals_on_the_same_drug():
    both = [cand(1, "carprofen", patient_id=10, name="Biscuit", animal=True),
            cand(2, "carprofen", patient_id=11, name="Max", animal=True)]
    ambiguous = decide_intake("need more carprofen", both)
    assert ambiguous.matches == [] and "2 prescriptions" in ambiguous.reason
    picked = decide_intake("Max needs more carprofen", both)
    assert [m.prescription_id for m in picked.matches] == [2]


def test_one_prescription_and_no_drug_named_goes_to_triage_with_a_suggestion():
    decision = decide_intake("Can I get a refill?", [cand(1, "lisinopril")])
    assert decision.matches == [] and decision.confidence == 0.5 and "one active prescription" in decision.reason


# --- API ---------------------------------------------------------------------------------------------

@pytest.fixture
def home(db):
    """The pharmacy the API's integrator account is bound to (its patients' preferred pharmacy)."""
    return PharmacyFactory(name="Home pharmacy")


@pytest.fixture
def person(home):
    today = timezone.localdate()
    patient = PatientFactory(first_name="Ana", last_name="Silva", phone="617-555-0100", email="ana@example.com",
                             preferred_pharmacy=home)
    lisinopril = PrescriptionFactory(patient=patient, drug=DrugFactory(name="lisinopril", brand_names=[]),
                                     written_date=today - timedelta(days=200))
    statin = PrescriptionFactory(patient=patient, drug=DrugFactory(name="atorvastatin", brand_names=["Lipitor"],
                                                                   therapeutic_class="statin", strength="20 mg"),
                                 written_date=today - timedelta(days=200))
    return patient, lisinopril, statin


@pytest.fixture
def owner(home):
    vet = VeterinarianFactory()
    biscuit = AnimalFactory(first_name="Biscuit", last_name="Moreno", phone="617-555-0142", email="rita@example.com",
                            preferred_pharmacy=home)
    max_ = AnimalFactory(first_name="Max", last_name="Moreno", species="cat", phone="617-555-0142",
                         email="rita@example.com", preferred_pharmacy=home)
    carprofen = DrugFactory(name="carprofen", brand_names=["Rimadyl"], therapeutic_class="nsaid", species="veterinary")
    apoquel = DrugFactory(name="oclacitinib", brand_names=["Apoquel"], therapeutic_class="jak_inhibitor",
                          species="veterinary")
    return {
        "biscuit_carprofen": PrescriptionFactory(patient=biscuit, prescriber=vet, drug=carprofen),
        "max_apoquel": PrescriptionFactory(patient=max_, prescriber=vet, drug=apoquel),
        "biscuit": biscuit, "max": max_, "vet": vet, "carprofen": carprofen,
    }


@pytest.fixture
def api(api_client_for, make_user, home):
    integrator = make_user("integrator")
    home.integrator_users.add(integrator)
    return api_client_for(user=integrator)


def send(api, text, sender="+1 (617) 555-0100", channel="sms", **extra):
    response = api.post(URL, {"channel": channel, "sender": sender, "text": text, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_brand_name_by_sms_opens_a_request_with_confidence_and_triage_summary(api, person):
    patient, _, statin = person
    body = send(api, "Hi, can I get more of my Lipitor? Thanks")
    assert body["status"] == "matched" and body["matched_patient"] == patient.pk
    [req] = body["requests"]
    assert req["prescription"] == statin.pk and req["source"] == "patient" and req["match_confidence"] == "1.000"
    summary = req["triage_summary"]
    assert {"patient", "medication", "last_filled", "days_supply", "days_since_last_visit", "relevant_history",
            "labs", "priority", "action_required"} <= set(summary)
    assert summary["priority"] in ("urgent", "routine") and "atorvastatin" in summary["medication"]
    assert summary["message"].startswith("Hi, can I get more")
    msg = IntakeMessage.objects.get(pk=body["id"])
    assert msg.requests.get().pk == req["id"]
    assert RefillRequest.objects.get(pk=req["id"]).history.earliest().history_user.username == "system:patient-intake"


def test_misspelled_drug_matches_with_lower_confidence(api, person):
    _, lisinopril, _ = person
    body = send(api, "need a refil of my lisinoprill", sender="6175550100")
    [req] = body["requests"]
    assert req["prescription"] == lisinopril.pk and 0.75 <= float(req["match_confidence"]) < 1


def test_dictionary_brand_not_in_catalog_matches(api, person):
    _, lisinopril, _ = person  # the drug row has no brand names; the offline dictionary knows Zestril
    body = send(api, "Please refill Zestril", channel="email", sender="ANA@example.com")
    assert [r["prescription"] for r in body["requests"]] == [lisinopril.pk]


def test_owner_with_two_pets_gets_each_pets_request(api, owner):
    first = send(api, "Biscuit is almost out of his rimadyl", sender="617.555.0142")
    assert [r["prescription"] for r in first["requests"]] == [owner["biscuit_carprofen"].pk]
    assert first["matched_patient"] == owner["biscuit"].pk
    second = send(api, "and Max needs apoquel too", channel="portal", sender="rita@example.com")
    assert [r["prescription"] for r in second["requests"]] == [owner["max_apoquel"].pk]
    summary = second["requests"][0]["triage_summary"]
    assert "Max" in summary["patient"] and "owner" in summary["patient"]


def test_two_pets_on_the_same_drug_without_a_name_land_in_triage(api, owner):
    PrescriptionFactory(patient=owner["max"], prescriber=owner["vet"], drug=owner["carprofen"])
    body = send(api, "need more carprofen please", sender="617-555-0142")
    assert body["status"] == "triage" and body["requests"] == []
    assert "Biscuit" in body["triage_reason"] and "Max" in body["triage_reason"]
    assert len(body["match_detail"]["candidates"]) == 3
    assert not RefillRequest.objects.exists()


def test_unknown_sender_lands_in_triage_and_is_kept(api, person):
    body = send(api, "refill my lisinopril", sender="+1 212 555 0199")
    assert body["status"] == "triage" and "Unknown sender" in body["triage_reason"]
    assert IntakeMessage.objects.filter(pk=body["id"], text="refill my lisinopril").exists()
    assert not RefillRequest.objects.exists()


def test_drug_not_on_file_is_named_in_the_triage_reason(api, person):
    body = send(api, "can you refill my metformin")
    assert body["status"] == "triage" and "metformin" in body["triage_reason"]


def test_second_message_while_a_request_is_open_opens_no_second_request(api, person):
    send(api, "refill lipitor")
    again = send(api, "did you get my lipitor refill?")
    assert again["status"] == "matched" and again["requests"] == []
    assert again["match_detail"]["already_open"] and RefillRequest.objects.count() == 1


def test_received_at_is_kept(api, person):
    when = (timezone.now() - timedelta(hours=5)).replace(microsecond=0)
    body = send(api, "refill lipitor", received_at=when.isoformat())
    assert IntakeMessage.objects.get(pk=body["id"]).received_at == when


@pytest.mark.parametrize(("payload", "field"), [
    ({"channel": "fax", "sender": "6175550100", "text": "x"}, "channel"),
    ({"channel": "sms", "sender": "hello", "text": "refill"}, "sender"),
    ({"channel": "email", "sender": "not-an-email", "text": "refill"}, "sender"),
    ({"channel": "sms", "sender": "6175550100", "text": ""}, "text"),
])
def test_invalid_input_is_400_naming_the_field(api, db, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not IntakeMessage.objects.exists()


@pytest.mark.parametrize(("role", "allowed"), [("pharmacist", True), ("technician", True), ("admin", True),
                                               ("integrator", True), ("prescriber", False)])
def test_intake_roles(api_client_for, person, role, allowed):
    response = api_client_for(role).post(URL, {"channel": "sms", "sender": "6175550100", "text": "refill lipitor"},
                                         format="json")
    assert (response.status_code == 201) is allowed
    assert response.status_code in (201, 403)


def test_intake_url_is_not_taken_for_a_request_id(api, person):
    assert api.get(URL).status_code == 405  # the intake action, not refill-requests/{pk}/


def test_matching_failure_keeps_the_message_in_triage(api, person, monkeypatch):
    import refills.intake as intake

    def boom(*args, **kwargs):
        raise RuntimeError("dictionary broke")

    monkeypatch.setattr(intake, "decide_intake", boom)
    body = send(api, "refill lipitor")
    assert body["status"] == "triage" and "RuntimeError" in body["triage_reason"]
    assert IntakeMessage.objects.filter(pk=body["id"]).exists()


# --- partners: an integrator account matches only within its own pharmacies (issue 14 item 3) --------

@pytest.fixture
def two_pharmacies(make_user, api_client_for):
    """Pharmacies A and B, each with its integrator account; Ana (A) and Ben (B) share a family phone
    and both take lisinopril; Cara (B only) has her own phone."""
    today = timezone.localdate()
    sides = {}
    for label, name in (("A", "Ana"), ("B", "Ben")):
        pharmacy = PharmacyFactory(name=f"Pharmacy {label}")
        integrator = make_user("integrator", username=f"intake_{label.lower()}")
        pharmacy.integrator_users.add(integrator)
        patient = PatientFactory(first_name=name, last_name=f"Family{label}", phone="617-555-0160",
                                 preferred_pharmacy=pharmacy, consent_to_messages=True)
        rx = PrescriptionFactory(patient=patient, drug=DrugFactory(name="lisinopril", brand_names=[]),
                                 written_date=today - timedelta(days=200))
        sides[label] = {"pharmacy": pharmacy, "api": api_client_for(user=integrator), "patient": patient, "rx": rx}
    cara = PatientFactory(first_name="Cara", last_name="Onlyb", phone="617-555-0161",
                          preferred_pharmacy=sides["B"]["pharmacy"])
    sides["B"]["cara_rx"] = PrescriptionFactory(
        patient=cara, drug=DrugFactory(name="atorvastatin", brand_names=["Lipitor"]),
        written_date=today - timedelta(days=200))
    sides["B"]["cara"] = cara
    return sides


def _names_in(response_text: str, patient) -> bool:
    return patient.first_name in response_text or patient.last_name in response_text


@pytest.mark.parametrize(("me", "other"), [("A", "B"), ("B", "A")])
def test_intake_through_an_integrator_matches_only_its_own_pharmacies_patients(two_pharmacies, me, other):
    mine, theirs = two_pharmacies[me], two_pharmacies[other]
    response = mine["api"].post(URL, {"channel": "sms", "sender": "6175550160", "text": "refill my lisinopril"},
                                format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    # The shared phone matches only my patient: one request, on my prescription; theirs untouched.
    assert body["status"] == "matched" and body["matched_patient"] == mine["patient"].pk
    assert [r["prescription"] for r in body["requests"]] == [mine["rx"].pk]
    assert [p["id"] for p in body["match_detail"]["patients"]] == [mine["patient"].pk]
    assert {c["prescription_id"] for c in body["match_detail"]["candidates"]} == {mine["rx"].pk}
    assert not _names_in(response.content.decode(), theirs["patient"])
    assert not RefillRequest.objects.filter(prescription=theirs["rx"]).exists()


def test_intake_for_another_pharmacys_patient_reads_as_an_unknown_sender(two_pharmacies):
    a, b = two_pharmacies["A"], two_pharmacies["B"]
    # Cara is B's patient: through A's account her number is indistinguishable from a number nobody has.
    theirs = a["api"].post(URL, {"channel": "sms", "sender": "6175550161", "text": "refill lipitor"}, format="json")
    nobody = a["api"].post(URL, {"channel": "sms", "sender": "6175550199", "text": "refill lipitor"}, format="json")
    assert theirs.status_code == nobody.status_code == 201
    seen = {k: v for k, v in theirs.json().items() if k not in ("id", "sender", "received_at")}
    unseen = {k: v for k, v in nobody.json().items() if k not in ("id", "sender", "received_at")}
    assert seen == unseen and seen["status"] == "triage" and seen["matched_patient"] is None
    assert not _names_in(theirs.content.decode(), b["cara"])
    assert not RefillRequest.objects.filter(prescription=b["cara_rx"]).exists()
    # The other direction: B's own account matches her.
    own = b["api"].post(URL, {"channel": "sms", "sender": "6175550161", "text": "refill lipitor"}, format="json")
    assert own.json()["status"] == "matched" and own.json()["matched_patient"] == b["cara"].pk
    assert [r["prescription"] for r in own.json()["requests"]] == [b["cara_rx"].pk]


def test_intake_by_staff_still_matches_across_the_chain(two_pharmacies, api_client_for):
    body = send(api_client_for("pharmacist"), "refill my lisinopril", sender="6175550160")
    assert body["status"] == "triage"  # two family members on lisinopril: a person decides
    assert {p["id"] for p in body["match_detail"]["patients"]} == {
        two_pharmacies["A"]["patient"].pk, two_pharmacies["B"]["patient"].pk}


@pytest.mark.parametrize(("me", "other"), [("A", "B"), ("B", "A")])
def test_sms_stop_through_an_integrator_withdraws_only_its_own_patients_consent(two_pharmacies, me, other):
    mine, theirs = two_pharmacies[me], two_pharmacies[other]
    body = send(mine["api"], "STOP", sender="+1 617 555 0160")
    mine["patient"].refresh_from_db()
    theirs["patient"].refresh_from_db()
    assert mine["patient"].consent_to_messages is False
    assert theirs["patient"].consent_to_messages is True
    assert body["matched_patient"] == mine["patient"].pk and "1 patient(s)" in body["triage_reason"]
