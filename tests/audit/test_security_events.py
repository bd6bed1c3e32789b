"""Security events land in the chain: logins and failures, lockouts, role and privilege
changes, admin (settings) changes and exports."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def _kinds():
    return list(AuditEvent.objects.order_by("sequence").values_list("kind", flat=True))


def test_login_and_logout_recorded(client, pharmacist):
    response = client.post(
        "/login/", {"username": pharmacist.username, "password": "test-pass-123456"}, REMOTE_ADDR="10.9.8.7"
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(kind="login.success")
    assert event.actor == pharmacist and event.ip_address == "10.9.8.7"
    client.post("/logout/")
    assert AuditEvent.objects.filter(kind="logout", actor=pharmacist).exists()
    assert verify_chain().ok


def test_failed_login_recorded_without_the_password(client, pharmacist):
    client.post("/login/", {"username": pharmacist.username, "password": "wrong-password-1"})
    event = AuditEvent.objects.get(kind="login.failed")
    assert event.actor is None and event.actor_label == pharmacist.username
    assert "wrong-password-1" not in str(event.data) + event.summary


def test_lockout_after_repeated_failures(client, settings, pharmacist):
    """django-axes locks the username+IP after AXES_FAILURE_LIMIT failures (5 by default);
    the right password is refused while locked (45 CFR 164.308(a)(5)(ii)(C))."""
    settings.AXES_ENABLED = True
    from axes.models import AccessAttempt

    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    for _ in range(limit):
        client.post("/login/", {"username": pharmacist.username, "password": "nope-nope-nope"})
    locked = client.post("/login/", {"username": pharmacist.username, "password": "test-pass-123456"})
    assert locked.status_code in (403, 429)
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username=pharmacist.username).exists()
    assert AuditEvent.objects.filter(kind="login.locked_out", actor_label=pharmacist.username).exists()
    assert AuditEvent.objects.filter(kind="login.failed").count() >= limit


def test_role_grant_and_revoke_recorded_with_the_acting_admin(client, make_user):
    from django.contrib.auth.models import Group

    admin = make_user("admin", is_staff=True, is_superuser=True)
    target = make_user(None)
    client.force_login(admin)
    pharmacist_group = Group.objects.get(name="pharmacist")
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": target.username,
            "groups": [pharmacist_group.pk],
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    granted = AuditEvent.objects.get(kind="role.granted", subject_id=str(target.pk))
    assert granted.actor == admin and granted.data["roles"] == ["pharmacist"]
    target.groups.remove(pharmacist_group)
    revoked = AuditEvent.objects.get(kind="role.revoked", subject_id=str(target.pk))
    assert revoked.actor_label == "system:maintenance"  # outside a request: the named system actor
    assert AuditEvent.objects.filter(kind="admin.changed", actor=admin).exists()


def test_privilege_change_recorded(make_user):
    user = make_user(None)
    user.is_superuser = True
    user.save()
    event = AuditEvent.objects.get(kind="user.privileges_changed", subject_id=str(user.pk))
    assert event.data["changes"] == {"is_superuser": [False, True]}


def test_settings_change_in_admin_recorded(client, make_user):
    from refills.models import ProtocolRule

    rule = ProtocolRule.objects.create(name="Statins", mode="shadow", therapeutic_classes=["statin"])
    admin = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    change_page = client.get(f"/admin/refills/protocolrule/{rule.pk}/change/")
    assert change_page.status_code == 200
    form = change_page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "name": "Statins",
            "mode": "assist",
            "species": "human",
            "therapeutic_classes": '["statin"]',
            "drug_names": "[]",
            "required_labs": "[]",
            "priority": 100,
            "max_months_since_visit": 12,
            "min_therapy_months": 6,
            "bridge_days": 30,
            "is_active": "on",
            "require_maintenance": "on",
            "check_allergy_conflict": "on",
            "check_too_soon": "on",
        }
    )
    response = client.post(f"/admin/refills/protocolrule/{rule.pk}/change/", data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response
    )
    event = AuditEvent.objects.get(kind="admin.changed", data__model="refills.protocolrule")
    assert event.actor == admin and "Mode" in event.data["change"] or "mode" in event.data["change"].lower()
    assert verify_chain().ok


def test_refill_decision_is_an_audit_event(pharmacist):
    from refills import services
    from refills.models import RefillRequest
    from tests.factories import PrescriptionFactory

    rx = PrescriptionFactory()
    req = RefillRequest.objects.create(prescription=rx, patient=rx.patient, status="needs_review")
    services.refill_request_deny(request_id=req.pk, actor=pharmacist, reason="Needs a visit first")
    event = AuditEvent.objects.get(kind="refill.denied")
    assert event.actor == pharmacist and event.patient_id == rx.patient_id


def test_api_token_exchange_is_a_recorded_login(client, integrator):
    from rest_framework.test import APIClient

    api = APIClient()
    ok = api.post(
        "/api/v1/auth/token/",
        {"username": integrator.username, "password": "test-pass-123456"},
        format="json",
    )
    assert ok.status_code == 200
    assert AuditEvent.objects.filter(kind="login.success", actor=integrator).exists()
    bad = api.post(
        "/api/v1/auth/token/", {"username": integrator.username, "password": "wrong-wrong-1"}, format="json"
    )
    assert bad.status_code == 400
    assert AuditEvent.objects.filter(kind="login.failed", actor_label=integrator.username).exists()
