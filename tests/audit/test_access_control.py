"""Access control hardening: object-level rules, integrators only on the API, idle session
expiry, lockout (see test_security_events), password strength, CSRF on every form, production
cookies/headers, and no PHI in application logs."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from tests.factories import PatientFactory, PrescriberFactory, PrescriptionFactory

ROOT = Path(__file__).resolve().parents[2]


# --- object-level: a prescriber sees only their own patients' requests ---------------------------


@pytest.fixture
def two_prescribers(db, make_user):
    from refills.models import RefillRequest

    me = make_user("prescriber")
    mine_dr, other_dr = PrescriberFactory(user=me), PrescriberFactory()
    mine = PrescriptionFactory(prescriber=mine_dr)
    theirs = PrescriptionFactory(prescriber=other_dr)
    reqs = {
        key: RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="awaiting_prescriber")
        for key, rx in (("mine", mine), ("theirs", theirs))
    }
    return me, reqs


def test_prescriber_queue_and_detail_show_only_own_patients(client, two_prescribers):
    me, reqs = two_prescribers
    client.force_login(me)
    queue = client.get("/refills/").content.decode()
    assert reqs["mine"].patient.last_name in queue and reqs["theirs"].patient.last_name not in queue
    assert client.get(f"/refills/{reqs['mine'].pk}/").status_code == 200
    assert client.get(f"/refills/{reqs['theirs'].pk}/").status_code == 404


def test_prescriber_api_shows_only_own_patients(api_client_for, two_prescribers):
    me, reqs = two_prescribers
    api = api_client_for(user=me)
    ids = {row["id"] for row in api.get("/api/v1/refill-requests/").json()["results"]}
    assert ids == {reqs["mine"].pk}
    assert api.get(f"/api/v1/refill-requests/{reqs['theirs'].pk}/").status_code == 404


def test_prescriber_sees_only_own_patients_pages_search_and_api(client, api_client_for, two_prescribers):
    me, reqs = two_prescribers
    mine, theirs = reqs["mine"].patient, reqs["theirs"].patient
    client.force_login(me)
    assert client.get(f"/patients/{mine.pk}/").status_code == 200
    assert client.get(f"/patients/{theirs.pk}/").status_code == 404
    found = client.get("/patients/", {"q": theirs.last_name}).content.decode()
    assert f"/patients/{theirs.pk}/" not in found
    api = api_client_for(user=me)
    assert {row["id"] for row in api.get("/api/v1/patients/").json()["results"]} == {mine.pk}
    assert api.get(f"/api/v1/patients/{theirs.pk}/").status_code == 404


def test_patient_page_panels_show_a_prescriber_only_their_own_requests(client, two_prescribers):
    from refills.models import RefillRequest

    me, reqs = two_prescribers
    patient = reqs["mine"].patient
    # A colleague's prescription for the same patient, with its own request.
    colleague_rx = PrescriptionFactory(patient=patient, drug__name="colleaguedrug")
    RefillRequest.objects.create(prescription=colleague_rx, patient=patient, status="needs_review")
    client.force_login(me)
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    panel = page[page.index("Refill requests"):]
    assert reqs["mine"].prescription.drug.name in panel and "colleaguedrug" not in panel.split("</section>")[0]


def test_prescriber_api_clinical_records_only_for_own_patients(api_client_for, pharmacist, two_prescribers):
    from tests.factories import AllergyFactory, FillFactory

    me, reqs = two_prescribers
    mine, theirs = reqs["mine"].prescription, reqs["theirs"].prescription
    FillFactory(prescription=mine), FillFactory(prescription=theirs)
    AllergyFactory(patient=mine.patient), AllergyFactory(patient=theirs.patient)
    api = api_client_for(user=me)
    assert {r["id"] for r in api.get("/api/v1/prescriptions/").json()["results"]} == {mine.pk}
    assert {r["prescription"] for r in api.get("/api/v1/fills/").json()["results"]} == {mine.pk}
    assert {r["patient"] for r in api.get("/api/v1/allergies/").json()["results"]} == {mine.patient_id}
    assert api.get(f"/api/v1/prescriptions/{theirs.pk}/").status_code == 404
    staff = api_client_for(user=pharmacist)
    assert len(staff.get("/api/v1/prescriptions/").json()["results"]) == 2


def test_scoping_helper_leaves_staff_unscoped(db, pharmacist, two_prescribers):
    from pharmacy.models import Patient
    from pharmacy.scoping import scope_patients, scope_to_prescriber
    from refills.models import RefillRequest

    me, reqs = two_prescribers
    assert scope_patients(Patient.objects.all(), pharmacist).count() == Patient.objects.count()
    assert list(scope_to_prescriber(RefillRequest.objects.all(), me)) == [reqs["mine"]]
    assert scope_to_prescriber(RefillRequest.objects.all(), pharmacist).count() == 2


def test_pharmacist_sees_every_request(client, pharmacist, two_prescribers):
    _, reqs = two_prescribers
    client.force_login(pharmacist)
    assert client.get(f"/refills/{reqs['theirs'].pk}/").status_code == 200


# --- integrators: API only --------------------------------------------------------------------------


def test_integrator_is_refused_on_every_html_page():
    from tests.test_security_matrix import ENDPOINTS

    html = [
        (name, path, roles)
        for name, path, method, roles in ENDPOINTS
        if method != "public" and not path.startswith("/api/")
    ]
    assert html, "no HTML endpoints found"
    # Issue 11: an integrator's browser page is its own API token page; "/" sends it there.
    integrator_pages = {"api-tokens", "dashboard"}
    offending = [(name, path) for name, path, roles in html
                 if roles and "integrator" in roles and name not in integrator_pages]
    assert not offending, f"HTML pages open to integrators: {offending}"


@pytest.mark.django_db
def test_integrator_uses_the_api_but_not_pages(client, integrator, api_client_for):
    client.force_login(integrator)
    landing = client.get("/")
    assert landing.status_code == 302 and landing["Location"] == "/account/api-tokens/"
    assert client.get("/patients/").status_code == 403
    assert api_client_for(user=integrator).get("/api/v1/patients/").status_code == 200


# --- sessions -----------------------------------------------------------------------------------------


def test_session_idles_out_after_15_minutes_by_default():
    # HIPAA 45 CFR 164.312(a)(2)(iii) automatic logoff.
    assert django_settings.SESSION_COOKIE_AGE == 15 * 60
    assert django_settings.SESSION_SAVE_EVERY_REQUEST is True


@pytest.mark.django_db
def test_idle_session_is_logged_out(client, pharmacist):
    from django.contrib.sessions.models import Session

    client.force_login(pharmacist)
    assert client.get("/").status_code == 200
    key = client.session.session_key
    # 16 minutes of inactivity: the session's expiry (extended on each request) has passed.
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(minutes=1))
    response = client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_activity_extends_the_session(client, pharmacist):
    from django.contrib.sessions.models import Session

    client.force_login(pharmacist)
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get("/").status_code == 200
    expiry = Session.objects.get(session_key=key).expire_date
    assert expiry > timezone.now() + timedelta(minutes=10)


# --- passwords ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short1!", "password12345", "123456789012345", "paula.reyes.2026"])
def test_weak_passwords_are_refused(password):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user = get_user_model()(username="paula.reyes", first_name="Paula", last_name="Reyes")
    with pytest.raises(ValidationError):
        validate_password(password, user)


@pytest.mark.django_db
def test_strong_password_is_accepted():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password

    validate_password("violet-Harbor-trumpet-93", get_user_model()(username="paula.reyes"))


# --- CSRF and production settings -------------------------------------------------------------------


def test_every_post_form_carries_a_csrf_token():
    missing = []
    for template in sorted(ROOT.glob("templates/**/*.html")):
        text = template.read_text()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", text, flags=re.S | re.I):
            if re.search(r'method=["\']?post', form, flags=re.I) and "csrf_token" not in form:
                missing.append(template.relative_to(ROOT).as_posix())
    assert not missing, f"POST forms without {{% csrf_token %}}: {missing}"


def test_csrf_middleware_is_on_and_enforced(db, pharmacist):
    from django.test import Client

    assert "django.middleware.csrf.CsrfViewMiddleware" in django_settings.MIDDLEWARE
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(pharmacist)
    assert strict.post("/logout/").status_code == 403


def test_production_settings_secure_cookies_and_headers(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_VERSION")}
    env.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": "x" * 60,
            "RXHUB_AUDIT_KEY": "k" * 40,
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        }
    )
    code = (
        "import django,os;os.environ.setdefault('DJANGO_SETTINGS_MODULE','pharmacy.settings');django.setup();"
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE,s.CSRF_COOKIE_SECURE,s.SECURE_SSL_REDIRECT,"
        "s.SECURE_HSTS_SECONDS>0,s.SESSION_COOKIE_HTTPONLY,s.X_FRAME_OPTIONS,s.SECURE_CONTENT_TYPE_NOSNIFF)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["True", "True", "True", "True", "True", "DENY", "True"], out.stderr


# --- no PHI in application logs ---------------------------------------------------------------------


@pytest.mark.django_db
def test_no_phi_in_application_logs_of_a_full_workflow(
    caplog, client, pharmacist, api_client_for, due_prescription, ace_rule, capsys
):
    """Seeded patients' names, dates of birth and phone numbers never reach the logs during
    detection, review, decision, dispatch, notification and API reads."""
    from refills.detection import detect_refills, evaluate_opened

    patient = due_prescription.patient
    patient.first_name, patient.last_name, patient.phone = "Zebulon", "Quackenbush", "617-555-0142"
    patient.save()
    other = PatientFactory(first_name="Philippa", last_name="Vandersloot", phone="508-555-0177")
    ace_rule("assist")
    caplog.set_level(logging.DEBUG)
    evaluate_opened(detect_refills(today=timezone.localdate()).request_ids)
    req = due_prescription.refill_requests.get()
    client.force_login(pharmacist)
    for url in (
        "/",
        "/refills/",
        f"/refills/{req.pk}/",
        f"/patients/{patient.pk}/",
        f"/patients/{other.pk}/",
        "/patients/?q=Quackenbush",
        "/refills/999999/",
        f"/patients/{other.pk + 1000}/",
    ):
        client.get(url)
    client.post(f"/refills/{req.pk}/approve/", {"note": "Approved per protocol"})
    req.refresh_from_db()
    assert req.status in ("sent_to_pharmacy", "approved"), req.status
    api = api_client_for("integrator")
    api.get("/api/v1/patients/")
    api.get(f"/api/v1/refill-requests/{req.pk}/")
    api.post(
        "/api/v1/patients/", {"first_name": "Zebulon", "last_name": "Quackenbush"}, format="json"
    )  # invalid
    text = caplog.text + "".join(capsys.readouterr())
    assert len(caplog.records) > 0, "the workflow logs something (otherwise this test proves nothing)"
    secrets = []
    for p in (patient, other):
        secrets += [
            p.first_name,
            p.last_name,
            p.birth_date.isoformat(),
            p.birth_date.strftime("%m/%d/%Y"),
            p.phone,
            re.sub(r"\D", "", p.phone),
        ]
    leaked = [s for s in secrets if s and s.lower() in text.lower()]
    assert not leaked, f"PHI in logs: {leaked}"


def test_web_server_access_log_leaves_out_query_strings_and_referrers():
    """gunicorn's default access log line has the full request line (%(r)s) and the referrer
    (%(f)s): a patient search ``/patients/?q=<name>`` would write a name into the log."""
    from pharmacy.management.commands.serve import ACCESS_LOG_FORMAT

    assert "%(U)s" in ACCESS_LOG_FORMAT
    for leaky in ("%(r)s", "%(q)s", "%(f)s", "%({"):
        assert leaky not in ACCESS_LOG_FORMAT
    source = (ROOT / "pharmacy/management/commands/serve.py").read_text()
    assert '"--access-logformat", ACCESS_LOG_FORMAT' in source
