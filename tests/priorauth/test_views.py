"""Server-rendered PA pages: queue (by deadline, fixed query count), case review (evidence,
criteria, editable letter, technician cannot approve, history), automatic list, analytics
charts, dashboard card and patient panel."""

from datetime import timedelta

import pytest
from django.utils import timezone

from priorauth import services
from priorauth.choices import OPEN_STATUSES
from priorauth.models import PACase
from tests.factories import PrescriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(pa_rx, make_criteria, pharmacist):
    make_criteria()
    return services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)


def test_case_page_shows_evidence_criteria_letter_and_history(client, pharmacist, case):
    client.force_login(pharmacist)
    html = client.get(f"/priorauth/{case.pk}/").content.decode()
    assert "Evidence" in html and "metformin" in html and "Hemoglobin A1c" in html
    assert "Criteria check" in html and "Step therapy: metformin for 90 days" in html
    assert "Approve and submit" in html and 'name="letter"' in html
    assert "starts at submission" in html
    assert "history" in html.lower()


def test_technician_saves_but_cannot_submit(client, technician, case):
    client.force_login(technician)
    html = client.get(f"/priorauth/{case.pk}/").content.decode()
    assert "Approve and submit" not in html and "A pharmacist approves the submission." in html
    response = client.post(
        f"/priorauth/{case.pk}/save/", {"letter": "Edited by tech", "action": "submit"}, follow=True
    )
    assert "Only pharmacist or admin may approve a PA submission." in response.content.decode()
    client.post(f"/priorauth/{case.pk}/save/", {"letter": "Edited by tech", "action": "save"})
    case.refresh_from_db()
    assert case.status == "ready_for_review" and case.letter == "Edited by tech"


def test_pharmacist_edits_fields_and_submits(client, pharmacist, case):
    client.force_login(pharmacist)
    response = client.post(
        f"/priorauth/{case.pk}/save/",
        {
            "letter": case.letter + "\nChecked.",
            "action": "submit",
            **{f"field__{k}": v for k, v in case.fields.items()},
            "field__quantity": "3",
        },
        follow=True,
    )
    assert "Approved and submitted to the payer." in response.content.decode()
    case.refresh_from_db()
    assert case.status == "submitted" and case.letter.endswith("Checked.") and case.fields["quantity"] == "3"
    assert case.agreement["letter_similarity"] < 1


def test_queue_orders_by_deadline_and_flags_overdue(client, pharmacist, case, make_criteria):
    other = services.pa_case_open(prescription_id=PrescriptionFactory(drug=case.drug).pk, actor=pharmacist)
    services.pa_case_submit(case_id=other.pk, actor=pharmacist)
    PACase.objects.filter(pk=other.pk).update(decision_due_at=timezone.now() - timedelta(hours=1))
    client.force_login(pharmacist)
    html = client.get("/priorauth/").content.decode()
    assert html.index(f'data-testid="status-{other.pk}"') < html.index(f'data-testid="status-{case.pk}"')
    assert "overdue" in html and "not submitted" in html


@pytest.mark.parametrize("extra", [0, 6])
def test_queue_query_count_is_fixed(client, pharmacist, case, extra, django_assert_max_num_queries):
    for _ in range(extra):
        services.pa_case_open(prescription_id=PrescriptionFactory(drug=case.drug).pk, actor=pharmacist)
    client.force_login(pharmacist)
    with django_assert_max_num_queries(16):
        assert client.get("/priorauth/").status_code == 200


@pytest.mark.parametrize("responses", [0, 5])
def test_case_page_query_count_is_fixed(client, pharmacist, case, responses, django_assert_max_num_queries):
    services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    for _ in range(responses):
        services.pa_response_receive(case_id=case.pk, data={"decision": "pended"}, raw="{}")
    client.force_login(pharmacist)
    with django_assert_max_num_queries(30):
        assert client.get(f"/priorauth/{case.pk}/").status_code == 200


def test_open_from_prescription_page_form(client, pharmacist, pa_rx):
    client.force_login(pharmacist)
    response = client.post("/priorauth/open/", {"prescription": pa_rx.pk})
    case = PACase.objects.get(prescription=pa_rx)
    assert response.status_code == 302 and response["Location"].endswith(f"/priorauth/{case.pk}/")
    assert (
        "No such prescription"
        in client.post("/priorauth/open/", {"prescription": 999999}, follow=True).content.decode()
    )


def test_automatic_list_and_review(client, pharmacist, pa_rx, make_criteria):
    make_criteria(rollout_mode="auto")
    case = services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)
    client.force_login(pharmacist)
    html = client.get("/priorauth/automatic/").content.decode()
    assert f"#{case.pk}" in html and "Every criterion met" in html
    client.post(f"/priorauth/{case.pk}/review/", {"verdict": "error", "note": "wrong quantity"})
    assert PACase.objects.get(pk=case.pk).auto_review == "error"


def test_analytics_page_draws_charts(client, pharmacist, case):
    services.pa_case_submit(case_id=case.pk, actor=pharmacist)
    services.pa_response_receive(
        case_id=case.pk, data={"decision": "denied", "reasons": ["Not medically necessary"]}, raw="{}"
    )
    client.force_login(pharmacist)
    html = client.get("/priorauth/analytics/").content.decode()
    for key in ("by-status", "approval-payer", "approval-drug", "denials"):
        assert f'data-chart="{key}"' in html
    assert "Not medically necessary" in html and "Rollout readiness" in html
    assert "<script" not in html.split("<main", 1)[1]  # drawn server-side


def test_dashboard_card_and_patient_panel(client, pharmacist, case):
    client.force_login(pharmacist)
    assert "Prior authorization" in client.get("/").content.decode()
    html = client.get(f"/patients/{case.patient_id}/").content.decode()
    assert f"PA #{case.pk}" in html


def test_attachment_upload(client, technician, case):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(technician)
    client.post(
        f"/priorauth/{case.pk}/attach/",
        {"file": SimpleUploadedFile("notes.pdf", b"%PDF-1.4 x", content_type="application/pdf")},
    )
    attachment = case.attachments.get()
    assert attachment.file_name == "notes.pdf" and bytes(attachment.data).startswith(b"%PDF")


def test_queue_flags_a_prescription_that_conflicts_with_an_allergy(client, pharmacist, case):
    from pharmacy.models import Allergy
    from pharmacy.services import prescription_allergy_check

    client.force_login(pharmacist)
    assert 'data-testid="allergy-flag"' not in client.get("/priorauth/").content.decode()
    Allergy.objects.create(patient=case.patient, substance=case.prescription.drug.name, severity="severe")
    assert prescription_allergy_check(prescription=case.prescription, actor=pharmacist)
    assert f"allergy: {case.prescription.drug.name}" in client.get("/priorauth/").content.decode()


def test_pa_case_opens_from_the_patients_prescription_list(client, pharmacist, pa_rx):
    """Issue 11 item 4: the patient page lists prescriptions by Rx number with an "Open PA case"
    button each (posting the existing open service); no page asks for a prescription id."""
    import re

    from pharmacy.models import Prescription

    Prescription.objects.filter(pk=pa_rx.pk).update(rx_number="RX-778899")
    client.force_login(pharmacist)
    html = client.get(f"/patients/{pa_rx.patient_id}/").content.decode()
    row = html[html.index(f'data-testid="rx-{pa_rx.pk}"'):]
    row = row[: row.index("</tr>")]
    assert "RX-778899" in row and "Open PA case" in row
    form = re.search(r'<form method="post" action="([^"]+)".*?name="prescription" value="(\d+)"', row, re.S)
    assert form and form.group(2) == str(pa_rx.pk)
    assert 'type="number"' not in html and "Prescription id" not in html
    response = client.post(form.group(1), {"prescription": form.group(2)})
    case = PACase.objects.get(prescription=pa_rx)
    assert response.status_code == 302 and response["Location"].endswith(f"/priorauth/{case.pk}/")
    queue = client.get("/priorauth/").content.decode()
    assert 'aria-label="Open a PA case"' not in queue and 'data-testid="open-case-hint"' in queue


def test_pa_queue_filters_a_person_would_use(client, pharmacist, pa_rx, make_criteria):
    """Issue 11 item 6: status chips with counts, a patient/drug search and plain toggles, all in
    the URL; no "---------", no "Unknown" and no id boxes."""
    from tests.factories import PatientFactory

    make_criteria()
    first = services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)
    other_rx = PrescriptionFactory(drug=pa_rx.drug, patient=PatientFactory(last_name="Quimby", first_name="Otto"))
    second = services.pa_case_open(prescription_id=other_rx.pk, actor=pharmacist)
    PACase.objects.filter(pk=second.pk).update(is_expedited=True)
    client.force_login(pharmacist)
    html = client.get("/priorauth/").content.decode()
    assert "---------" not in html and "Unknown" not in html and 'type="number"' not in html
    assert 'aria-label="Status"' in html and 'class="chip current"' in html
    open_chip = html[html.index('aria-label="Status"'):]
    assert f'Open <span class="count">{PACase.objects.filter(status__in=OPEN_STATUSES).count()}</span>' in open_chip

    def shown_ids(url):
        page = client.get(url)
        assert page.status_code == 200
        return {c.pk for c, _clock in page.context["rows"]}

    assert shown_ids("/priorauth/?q=quimby") == {second.pk}
    assert shown_ids("/priorauth/?q=Quimby%2C+Otto") == {second.pk}
    assert shown_ids("/priorauth/?expedited=true") == {second.pk}
    assert shown_ids("/priorauth/?q=semaglutide") == {first.pk, second.pk}
    page = client.get("/priorauth/?expedited=true&q=quimby").content.decode()
    assert 'name="expedited" value="true" checked' in page and 'value="quimby"' in page
