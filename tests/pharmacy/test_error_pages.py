"""Styled error pages with the reason and a way back; refused requests log one line."""

import logging
import sys

import pytest
from django.test import Client

from pharmacy.error_views import render_error, service_unavailable


@pytest.mark.django_db
def test_refused_page_names_the_roles_and_offers_ways_back(make_user):
    client = Client()
    client.force_login(make_user("technician"))
    response = client.get("/audit/phi-access/", HTTP_REFERER="http://testserver/refills/")
    body = response.content.decode()
    assert response.status_code == 403
    assert 'data-testid="error-page"' in body and "app.css" in body
    assert "This page is for the admin role" in body
    assert 'href="http://testserver/refills/"' in body  # back where the person came from
    assert 'href="/"' in body and "Log in as someone else" in body


@pytest.mark.django_db
def test_missing_record_page_says_what_is_missing(make_user):
    client = Client()
    client.force_login(make_user("pharmacist"))
    response = client.get("/refills/999999/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "No such refill request." in body and "Go to the dashboard" in body
    unknown = client.get("/no-such-page/")
    assert unknown.status_code == 404 and "There is nothing here" in unknown.content.decode()
    assert "Resolver404" not in unknown.content.decode()


@pytest.mark.parametrize(("status", "heading"), [(410, "This is no longer available"),
                                                  (500, "Something went wrong on our side"),
                                                  (503, "The service is briefly unavailable")])
def test_pages_render_without_request_or_database(status, heading):
    # -p no:django safe: no request, no user, no database.
    response = render_error(None, status, with_user=False)
    body = response.content.decode()
    assert response.status_code == status and heading in body and 'data-testid="way-home"' in body


def test_unavailable_answers_retry_after():
    response = service_unavailable(reason="The database is not answering.", retry_after=20)
    assert response.status_code == 503 and response["Retry-After"] == "20"
    assert "The database is not answering." in response.content.decode()


@pytest.mark.django_db
def test_refused_request_logs_one_line_without_traceback(make_user, capfd):
    from django.conf import settings as dj_settings
    from django.utils.log import configure_logging

    configure_logging(dj_settings.LOGGING_CONFIG, dj_settings.LOGGING)
    try:
        client = Client()
        client.force_login(make_user("prescriber"))
        assert client.get("/audit/phi-access/").status_code == 403
        err = capfd.readouterr().err
    finally:
        # The handlers just configured write to capfd's stream, which closes after this test: point
        # them back at the real stderr so later tests' log lines do not fail with "Logging error".
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.setStream(sys.__stderr__)
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("Forbidden" in line and "/audit/phi-access/" in line for line in lines), err
    assert "Traceback" not in err and "PermissionDenied" not in err


@pytest.mark.django_db
def test_outbox_page_is_for_pharmacists_and_admins_only(make_user):
    client = Client()
    client.force_login(make_user("technician"))
    assert client.get("/outbox/").status_code == 403
    body = client.get("/refills/").content.decode()
    assert 'href="/outbox/"' not in body  # the menu shows only what the role may open
    client.force_login(make_user("pharmacist"))
    assert client.get("/outbox/").status_code == 200
    assert 'href="/outbox/"' in client.get("/refills/").content.decode()
