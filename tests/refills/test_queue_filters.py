"""The refill queue's filters a person would use (status chips with counts, one search box, plain
toggles, all in the URL) and the decision flow that opens the next open request by itself."""
import re

import pytest

from tests.factories import DrugFactory, PatientFactory, PrescriptionFactory

pytestmark = pytest.mark.django_db


def shown(response) -> list[int]:
    return [r.pk for r in response.context["page"].object_list]


@pytest.fixture
def three(make_request):
    ada = PrescriptionFactory(patient=PatientFactory(first_name="Ada", last_name="Lovelace"),
                              drug=DrugFactory(name="lisinopril"))
    grace = PrescriptionFactory(patient=PatientFactory(first_name="Grace", last_name="Hopper"),
                                drug=DrugFactory(name="metformin"))
    alan = PrescriptionFactory(patient=PatientFactory(first_name="Alan", last_name="Turing"),
                               drug=DrugFactory(name="atorvastatin"), refills_remaining=0)
    return (make_request(prescription=ada), make_request(prescription=grace, is_urgent=True),
            make_request(prescription=alan, kind="renewal", status="awaiting_prescriber"))


def test_queue_page_has_chips_search_and_toggles_not_raw_form_widgets(client, pharmacist, three):
    client.force_login(pharmacist)
    body = client.get("/refills/").content.decode()
    assert "---------" not in body and "Unknown" not in body and "Patient id" not in body
    assert re.search(r'class="chip current"[^>]*>Open <span class="count">3</span>', body)
    assert re.search(r'>Needs pharmacist review <span class="count">2</span>', body)
    assert re.search(r'>Awaiting prescriber <span class="count">1</span>', body)
    for label in ("Urgent", "Claimed by me", "Unclaimed", "Routine refills"):
        assert f"> {label}</label>" in body


@pytest.mark.parametrize(("query", "expected"), [
    ("q=lovelace", [0]), ("q=Hopper,+Grace", [1]), ("q=atorva", [2]), ("urgent=true", [1]),
    ("status=awaiting_prescriber", [2]), ("kind=renewal", [2]), ("routine=1", [1, 0]), ("unclaimed=1", [1, 0, 2]),
    ("mine=1", []),
])
def test_each_filter_is_in_the_url(client, pharmacist, three, query, expected):
    client.force_login(pharmacist)
    assert shown(client.get(f"/refills/?{query}")) == [three[i].pk for i in expected]


def test_search_by_birth_date(client, pharmacist, three):
    client.force_login(pharmacist)
    birth = three[0].patient.birth_date.isoformat()
    assert three[0].pk in shown(client.get(f"/refills/?q={birth}"))


def test_decision_opens_the_next_open_request_of_the_same_view_with_a_note(client, pharmacist, three):
    ada, grace, _ = three
    client.force_login(pharmacist)
    response = client.post(f"/refills/{grace.pk}/approve/", {"note": "", "queue": "kind=refill"})
    assert response.status_code == 302
    assert response["Location"] == f"/refills/{ada.pk}/?queue=kind%3Drefill&done={grace.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "Decided: Hopper, Grace — metformin" in page and f'href="/refills/{grace.pk}/?queue=kind%3Drefill"' in page
    # The last one in the view goes back to the queue, filters kept.
    last = client.post(f"/refills/{ada.pk}/deny/", {"reason_code": "AF", "reason": "Needs a visit",
                                                    "queue": "kind=refill"})
    assert last["Location"] == "/refills/?kind=refill"


def test_warnings_mark_approve_for_one_confirming_key(client, pharmacist, make_request):
    controlled = make_request(prescription=PrescriptionFactory(drug=DrugFactory(name="clonazepam",
                                                                                dea_schedule="4")))
    client.force_login(pharmacist)
    body = client.get(f"/refills/{controlled.pk}/").content.decode()
    assert "Schedule 4 controlled substance." in body and "data-confirm" in body
    routine = make_request()
    assert "data-confirm" not in client.get(f"/refills/{routine.pk}/").content.decode().split("Approve (a)")[0][-200:]
