"""The pure who-may-authorize rule (pharmacy/rules/authority.py) on its own, table-driven: no
database, no Django — plain facts in, an answer out (docs/standards.md "Who may authorize what")."""
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from pharmacy.rules import authority as A

TODAY = date(2026, 6, 1)
PRESCRIBER, OTHER_PRESCRIBER, PHARMACIST, OTHER_PHARMACIST = 10, 11, 20, 21

STATIN_RX = A.RequestFacts(kind="refill", dea_schedule="none", prescriber_id=PRESCRIBER, drug_name="atorvastatin",
                           drug_class="statin", quantity=Decimal("30"), days_supply=30, refills_authorized=5)
AGREEMENT = A.AgreementFacts(id=7, prescriber_id=PRESCRIBER, effective_date=TODAY - timedelta(days=30),
                             end_date=TODAY + timedelta(days=300), pharmacist_ids=frozenset({PHARMACIST}),
                             drug_classes=("statin",), document_reference="CPA-2026-7")

PHARM = A.Decider(kind="pharmacist", user_id=PHARMACIST)
OTHER_PHARM = A.Decider(kind="pharmacist", user_id=OTHER_PHARMACIST)
GROUP_PHARM = A.Decider(kind="pharmacist", user_id=OTHER_PHARMACIST, groups=frozenset({"clinic-a"}))
THE_PRESCRIBER = A.Decider(kind="prescriber", is_request_prescriber=True)
ANOTHER_PRESCRIBER = A.Decider(kind="prescriber")
PROTOCOL_NAMING = A.Decider(kind="protocol", agreement_id=AGREEMENT.id)
PROTOCOL_NOT_NAMING = A.Decider(kind="protocol")
TECHNICIAN = A.Decider(kind="technician", user_id=30)


def rx(**changes):
    return replace(STATIN_RX, **changes)


RENEWAL = rx(kind="renewal")

# (case, request, decider, agreements, allowed, code, words the message must carry)
AUTHORIZE_CASES = [
    ("refill: a pharmacist releases it", STATIN_RX, PHARM, (), True, "", "refill"),
    ("refill: a technician records no clinical approval", STATIN_RX, TECHNICIAN, (), False,
     A.NOT_A_CLINICIAN, "pharmacist or the prescriber"),
    ("refill with more refills is a renewal", rx(change=A.Change(refills=6)), PHARM, (), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "collaborative practice agreement"),
    ("refill with a larger quantity is a renewal", rx(change=A.Change(quantity=Decimal("60"))), PHARM, (), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "renewal"),
    ("refill with a smaller quantity stays a refill", rx(change=A.Change(quantity=Decimal("15"))), PHARM, (), True,
     "", ""),
    ("renewal: pharmacist without agreement", RENEWAL, PHARM, (), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "no collaborative practice agreement is recorded"),
    ("renewal: pharmacist under agreement", RENEWAL, PHARM, (AGREEMENT,), True, "", "agreement #7"),
    ("renewal: pharmacist of the agreement's group", RENEWAL, GROUP_PHARM,
     (replace(AGREEMENT, pharmacist_ids=frozenset(), pharmacist_groups=frozenset({"clinic-a"})),), True, "", ""),
    ("renewal: agreement does not name this pharmacist", RENEWAL, OTHER_PHARM, (AGREEMENT,), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "does not name this pharmacist"),
    ("renewal: agreement expired", RENEWAL, PHARM, (replace(AGREEMENT, end_date=TODAY - timedelta(days=1)),), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "not in effect"),
    ("renewal: agreement not yet effective", RENEWAL, PHARM,
     (replace(AGREEMENT, effective_date=TODAY + timedelta(days=1)),), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "not in effect"),
    ("renewal: agreement withdrawn", RENEWAL, PHARM, (replace(AGREEMENT, is_active=False),), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "not in effect"),
    ("renewal: agreement with another prescriber", RENEWAL, PHARM,
     (replace(AGREEMENT, prescriber_id=OTHER_PRESCRIBER),), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "no collaborative practice agreement is recorded"),
    ("renewal: agreement for another drug class", rx(kind="renewal", drug_name="lisinopril",
                                                       drug_class="ace_inhibitor"), PHARM, (AGREEMENT,), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "no collaborative practice agreement is recorded"),
    ("renewal: agreement naming the drug, not the class", rx(kind="renewal", drug_class=""), PHARM,
     (replace(AGREEMENT, drug_classes=(), drug_names=("Atorvastatin",)),), True, "", ""),
    ("renewal: beyond the agreement's days of supply", rx(kind="renewal", change=A.Change(refills=11)), PHARM,
     (replace(AGREEMENT, max_days_supply=180),), False, A.PRESCRIBER_AUTHORIZATION_REQUIRED, "at most 180 days"),
    ("renewal: protocol naming the agreement", RENEWAL, PROTOCOL_NAMING, (AGREEMENT,), True, "", ""),
    ("renewal: protocol not naming it", RENEWAL, PROTOCOL_NOT_NAMING, (AGREEMENT,), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "does not name the collaborative practice agreement"),
    ("renewal: the request's prescriber", RENEWAL, THE_PRESCRIBER, (), True, "", "prescriber"),
    ("renewal: another prescriber", RENEWAL, ANOTHER_PRESCRIBER, (), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "own prescriber"),
    ("Schedule II refill is a renewal", rx(dea_schedule="2"), PHARM, (AGREEMENT,), False,
     A.PRESCRIBER_AUTHORIZATION_REQUIRED, "Schedule II"),
    ("Schedule IV refill within refills stays releasable", rx(dea_schedule="4"), PHARM, (), True, "", ""),
] + [
    (f"Schedule {A.roman(s)} renewal: {who}", rx(kind="renewal", dea_schedule=s), decider, (AGREEMENT,), False,
     code, "EPCS")
    for s in ("2", "3", "4", "5")
    for who, decider, code in (("pharmacist under agreement", PHARM, A.PRESCRIBER_AUTHORIZATION_REQUIRED),
                               ("protocol naming agreement", PROTOCOL_NAMING, A.PRESCRIBER_AUTHORIZATION_REQUIRED),
                               ("the prescriber", THE_PRESCRIBER, A.EPCS_REQUIRED))
]


@pytest.mark.parametrize(("case", "request_", "decider", "agreements", "allowed", "code", "words"),
                         AUTHORIZE_CASES, ids=[c[0] for c in AUTHORIZE_CASES])
def test_authorize(case, request_, decider, agreements, allowed, code, words):
    answer = A.authorize(request=request_, decider=decider, agreements=agreements, today=TODAY)
    assert (answer.allowed, answer.code) == (allowed, code), answer.message
    assert words in answer.message
    assert answer.citation  # every answer carries its source
    renewal = A.effective_kind(request_) == "renewal"
    if allowed and agreements and decider.kind in ("pharmacist", "protocol") and renewal:
        assert answer.agreement is not None and answer.agreement.id == agreements[0].id
    if not allowed:
        assert answer.agreement is None


@pytest.mark.parametrize(("request_", "kind"), [
    (STATIN_RX, "refill"),
    (RENEWAL, "renewal"),
    (rx(dea_schedule="2"), "renewal"),
    (rx(dea_schedule="3"), "refill"),
    (rx(change=A.Change(refills=5)), "refill"),  # the same refills is no change
    (rx(change=A.Change(refills=2)), "renewal"),
    (rx(change=A.Change(days_supply=90)), "renewal"),
    (rx(change=A.Change(days_supply=15)), "refill"),
])
def test_effective_kind(request_, kind):
    assert A.effective_kind(request_) == kind


@pytest.mark.parametrize(("request_", "decider", "agreements", "actions"), [
    (STATIN_RX, PHARM, (), (A.APPROVE, A.FORWARD, A.DENY)),
    (RENEWAL, PHARM, (), (A.FORWARD, A.DENY)),
    (RENEWAL, PHARM, (AGREEMENT,), (A.APPROVE, A.FORWARD, A.DENY)),
    (rx(kind="renewal", dea_schedule="2"), PHARM, (AGREEMENT,), (A.FORWARD, A.DENY)),
    (RENEWAL, THE_PRESCRIBER, (), (A.APPROVE, A.APPROVE_WITH_CHANGES, A.DENY)),
    (rx(kind="renewal", dea_schedule="4"), THE_PRESCRIBER, (), (A.NEW_PRESCRIPTION, A.DENY)),
    (RENEWAL, ANOTHER_PRESCRIBER, (), ()),
    (STATIN_RX, TECHNICIAN, (), ()),
])
def test_offered_actions(request_, decider, agreements, actions):
    assert A.offered_actions(request=request_, decider=decider, agreements=agreements, today=TODAY) == actions


EXPIRES = TODAY + timedelta(days=365)

# (case, schedule, quantity, days supply, refills, expiration, field refused or None, words)
LIMIT_CASES = [
    ("within every limit", "none", "30", 30, 11, EXPIRES, None, ""),
    ("365-day maximum authorization", "none", "30", 30, 99, EXPIRES, "refills", "maximum authorization of 365 days"),
    ("365 days exactly is allowed", "none", "90", 90, 4, TODAY + timedelta(days=400), None, ""),
    ("just past 365 days", "none", "90", 90, 5, TODAY + timedelta(days=800), "refills", "at most 4 refills"),
    ("past the prescription's expiry", "none", "30", 30, 6, TODAY + timedelta(days=90), "refills",
     "runs past the prescription's expiration"),
    ("Schedule II: no refills", "2", "30", 30, 1, EXPIRES, "refills", "21 CFR 1306.12(a)"),
    ("Schedule II: zero refills", "2", "30", 30, 0, EXPIRES, None, ""),
    ("Schedule III: at most 5", "3", "30", 30, 6, EXPIRES, "refills", "21 CFR 1306.22(a)"),
    ("Schedule IV: 5 is the limit", "4", "30", 30, 5, EXPIRES, None, ""),
    ("Schedule IV: 6 is refused", "4", "30", 30, 6, EXPIRES, "refills", "at most 5 refills"),
    ("zero quantity", "none", "0", 30, 1, EXPIRES, "quantity", "greater than zero"),
    ("negative quantity", "none", "-5", 30, 1, EXPIRES, "quantity", "greater than zero"),
    ("zero days supply", "none", "30", 0, 1, EXPIRES, "days_supply", "greater than zero"),
    ("negative refills", "none", "30", 30, -1, EXPIRES, "refills", "cannot be negative"),
]


@pytest.mark.parametrize(("case", "schedule", "quantity", "days", "refills", "expiration", "field", "words"),
                         LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_check_changes(case, schedule, quantity, days, refills, expiration, field, words):
    check = A.check_changes(dea_schedule=schedule, quantity=Decimal(quantity), days_supply=days, refills=refills,
                            today=TODAY, expiration=expiration)
    if field is None:
        assert check.ok and check.errors == {}
    else:
        assert not check.ok and set(check.errors) == {field}
        assert words in check.errors[field]


def test_maximum_authorization_is_configurable():
    args = dict(dea_schedule="none", quantity=Decimal("30"), days_supply=30, refills=11, today=TODAY,
                expiration=EXPIRES)
    assert A.check_changes(**args).ok
    tight = A.check_changes(**args, policy=A.LimitPolicy(max_authorization_days=180))
    assert "maximum authorization of 180 days" in tight.errors["refills"]
    assert "at most 6 refills" in tight.errors["refills"]


@pytest.mark.parametrize(("quantity", "units_per_day", "warns"), [
    ("60", "2", False), ("30", "2", True), ("62", "2", False), ("90", None, False),
])
def test_quantity_against_sig_is_a_warning_not_a_refusal(quantity, units_per_day, warns):
    check = A.check_changes(dea_schedule="none", quantity=Decimal(quantity), days_supply=30, refills=1, today=TODAY,
                            expiration=EXPIRES, units_per_day=Decimal(units_per_day) if units_per_day else None)
    assert check.ok
    assert bool(check.warnings) == warns
    if warns:
        assert "does not match the sig" in check.warnings[0]
