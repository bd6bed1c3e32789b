"""The `admin` role (not a superuser, permissions from the role sync) administers in Django admin:
every changelist and every add page opens; settings (users and roles, protocol rules and modes,
agreements, drugs, payers and criteria, pharmacies and their integrator bindings) can be changed;
workflow rows and history stay read-only."""
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


def registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.fixture
def admin_client(client, make_user):
    user = make_user("admin", username="ada_admin")  # not staff, not superuser: the role alone
    assert not user.is_superuser and not user.is_staff
    client.force_login(user)
    client.user = user
    return client


def test_admin_role_opens_every_changelist_and_add_page(admin_client):
    assert admin_client.get("/admin/").status_code == 200
    refused, add_pages = [], 0
    for model, model_admin in registered():
        opts = model._meta
        changelist = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        if changelist.status_code != 200:
            refused.append(f"{opts.label} changelist: {changelist.status_code}")
        request = changelist.wsgi_request
        add = admin_client.get(f"/admin/{opts.app_label}/{opts.model_name}/add/")
        if model_admin.has_add_permission(request):
            add_pages += 1
            if add.status_code != 200:
                refused.append(f"{opts.label} add page: {add.status_code}")
        elif add.status_code != 403:  # read-only by design (workflow rows change through services)
            refused.append(f"{opts.label} add page of a read-only admin answered {add.status_code}")
    assert not refused, refused
    assert add_pages >= 10


SETTINGS = ["auth.user", "auth.group", "refills.protocolrule", "pharmacy.drug", "pharmacy.pharmacy",
            "priorauth.payer", "priorauth.payercriteria", "pharmacy.prescriber"]


@pytest.mark.parametrize("label", SETTINGS)
def test_admin_role_may_add_and_change_settings(admin_client, label):
    assert admin_client.user.has_perm(label.replace(".", ".add_")), label
    assert admin_client.user.has_perm(label.replace(".", ".change_")), label


def test_admin_role_creates_a_pharmacist_and_cannot_make_a_superuser(admin_client):
    response = admin_client.post("/admin/auth/user/add/", {
        "username": "newpharm", "password1": "a-Long-pass-2026!", "password2": "a-Long-pass-2026!",
        "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    user = get_user_model().objects.get(username="newpharm")
    change = admin_client.get(f"/admin/auth/user/{user.pk}/change/")
    assert change.status_code == 200
    form = change.context["adminform"].form
    assert "is_superuser" not in form.fields and "user_permissions" not in form.fields  # no escalation
    pharmacist = Group.objects.get(name="pharmacist")
    response = admin_client.post(f"/admin/auth/user/{user.pk}/change/", {
        "username": "newpharm", "first_name": "New", "last_name": "Pharmacist", "email": "",
        "is_active": "on", "groups": [pharmacist.pk], "is_superuser": "on",
        "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-12-01", "date_joined_1": "08:00:00"})
    assert response.status_code == 302, response.content.decode()[:3000]
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["pharmacist"] and not user.is_superuser


def test_admin_role_switches_a_protocol_rule_mode(admin_client):
    import json

    from pharmacy.actors import system_actor
    from refills.models import ProtocolRule
    from refills.services import protocol_rules_load_defaults

    protocol_rules_load_defaults(actor=system_actor("system:maintenance"))
    rule = ProtocolRule.objects.order_by("priority").first()
    assert rule.mode == "shadow"
    page = admin_client.get(f"/admin/refills/protocolrule/{rule.pk}/change/")
    assert page.status_code == 200
    data = {}
    for name in page.context["adminform"].form.fields:
        value = getattr(rule, name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | dict):
            data[name] = json.dumps(value)
        else:
            data[name] = value
    data["mode"] = "assist"
    response = admin_client.post(f"/admin/refills/protocolrule/{rule.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rule.refresh_from_db()
    assert rule.mode == "assist"
    assert rule.history.first().history_user == admin_client.user


def test_history_stays_read_only_for_the_admin_role(admin_client):
    from refills.models import RefillRequest

    assert not admin_client.user.has_perm("refills.change_refillrequest")
    assert not admin_client.user.has_perm("audit.change_auditevent")
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert RefillRequest.history.model._meta.label not in {m._meta.label for m in admin.site._registry}
