"""Loading the shipped protocol rules, and editing them in admin."""
import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from audit.models import AuditEvent
from pharmacy.actors import system_actor
from refills.models import ProtocolRule
from refills.protocol_defaults import DEFAULT_PROTOCOL_RULES
from refills.services import protocol_rules_load_defaults

pytestmark = pytest.mark.django_db


def test_command_loads_every_default_rule_in_shadow_mode_with_its_source(capsys):
    call_command("load_protocol_rules")
    rules = list(ProtocolRule.objects.all())
    assert {r.name for r in rules} == {row["name"] for row in DEFAULT_PROTOCOL_RULES}
    assert {r.mode for r in rules} == {"shadow"}
    assert all(r.source for r in rules)
    assert f"{len(rules)} created" in capsys.readouterr().out
    assert AuditEvent.objects.filter(kind="settings.protocol_rules_loaded").count() == 1


def test_second_load_keeps_the_practices_edits_and_replace_keeps_the_mode():
    actor = system_actor("system:maintenance")
    protocol_rules_load_defaults(actor=actor)
    rule = ProtocolRule.objects.get(name__startswith="Statins")
    rule.mode, rule.max_months_since_visit = "auto", 6
    rule.save()
    assert protocol_rules_load_defaults(actor=actor) == (0, 0)
    rule.refresh_from_db()
    assert rule.max_months_since_visit == 6
    created, updated = protocol_rules_load_defaults(actor=actor, replace=True)
    assert (created, updated) == (0, len(DEFAULT_PROTOCOL_RULES))
    rule.refresh_from_db()
    assert rule.mode == "auto" and rule.max_months_since_visit == 12
    assert rule.history.first().history_change_reason.startswith("Default refill protocol rule reloaded")


def test_only_an_admin_may_load_rules(pharmacist, admin_user):
    with pytest.raises(PermissionDenied):
        protocol_rules_load_defaults(actor=pharmacist)
    assert protocol_rules_load_defaults(actor=admin_user)[0] == len(DEFAULT_PROTOCOL_RULES)


def test_admin_edits_a_rule_and_sees_requests_read_only(client, make_user, make_request):
    superuser = make_user("admin", username="root")
    superuser.is_superuser = superuser.is_staff = True
    superuser.save()
    client.force_login(superuser)
    protocol_rules_load_defaults(actor=superuser)
    rule = ProtocolRule.objects.get(name__startswith="Levothyroxine")
    page = client.get(f"/admin/refills/protocolrule/{rule.pk}/change/")
    assert page.status_code == 200 and b"Levothyroxine" in page.content
    req = make_request()
    assert client.get("/admin/refills/refillrequest/").status_code == 200
    detail = client.get(f"/admin/refills/refillrequest/{req.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert client.post(f"/admin/refills/refillrequest/{req.pk}/change/", {"status": "approved"}).status_code == 403
    req.refresh_from_db()
    assert req.status == "needs_review"
