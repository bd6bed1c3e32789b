"""Issue 14 item 5: a Content-Security-Policy without inline script or style that the pages pass,
and Cache-Control: no-store on every page and API answer."""
import re
from pathlib import Path

import pytest

from tests.factories import PatientFactory, PrescriptionFactory

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:json|ld\+json)\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE = re.compile(r"<style\b|<[^>]+\sstyle\s*=", re.I)


def _inline(html: str) -> list[str]:
    return [m.group(0)[:80] for rx in (INLINE_SCRIPT, HANDLER, STYLE) for m in rx.finditer(html)]


@pytest.mark.parametrize("template", sorted((ROOT / "templates").rglob("*.html")), ids=lambda p: p.name)
def test_templates_have_no_inline_script_style_or_handler(template):
    assert _inline(template.read_text()) == [], template


def _assert_headers(response):
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'self'" in policy and "object-src 'none'" in policy
    assert "no-store" in response.headers.get("Cache-Control", "")


@pytest.mark.django_db
def test_pages_carry_csp_and_no_store_and_pass_it(client, pharmacist):
    patient = PrescriptionFactory(patient=PatientFactory()).patient
    client.force_login(pharmacist)
    pages = ["/", "/refills/", "/reconciliation/", f"/patients/{patient.pk}/", "/api/docs/"]
    checked = 0
    for path in pages:
        response = client.get(path)
        if response.status_code == 404:
            continue
        assert response.status_code == 200, (path, response.status_code)
        _assert_headers(response)
        assert _inline(response.content.decode()) == [], path
        checked += 1
    assert checked >= 4
    client.logout()
    login = client.get("/login/")
    _assert_headers(login)
    assert _inline(login.content.decode()) == []


@pytest.mark.django_db
def test_api_answers_are_no_store(api_client_for):
    response = api_client_for("pharmacist").get("/api/v1/patients/")
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"] and "private" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_static_files_keep_their_cache(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200 and "no-store" not in response.headers.get("Cache-Control", "")
