"""The registry (issue 12): each app's AppConfig declares what it adds; the core reads it and
never names an app."""
import re
from pathlib import Path

from pharmacy import registry
from pharmacy.schedules import declared_schedules

ROOT = Path(__file__).resolve().parents[2]
APPS = ("refills", "priorauth", "reconciliation")


def test_every_app_registers_its_contribution_in_installed_apps_order():
    labels = [c.app_label for c in registry.contributions()]
    assert labels == ["pharmacy", "refills", "priorauth", "reconciliation", "audit"]
    by_label = {c.app_label: c for c in registry.contributions()}
    for app in APPS:
        c = by_label[app]
        assert c.dashboard_card is not None and c.patient_panels is not None, app
        assert c.urls == f"{app}.urls" and c.api_register is not None and c.demo_seed is not None, app
        assert c.role_permissions and all(p.startswith(f"{app}.") for perms in c.role_permissions.values()
                                          for p in perms if p.split(".")[0] in APPS), app
    assert by_label["refills"].exports["controlled_substance_decisions"] is not None
    assert by_label["audit"].patient_panels is not None and by_label["audit"].dashboard_card is None


def test_menu_schedules_and_exports_come_from_the_registry():
    assert [e.label for e in registry.menu_entries()] == [
        "Dashboard", "Patients", "Refills", "Prior auth", "Reconciliation", "Outbox", "Audit", "API tokens"]
    names = {s["name"] for s in declared_schedules()}
    assert {"rxhub:outbox-retry", "rxhub:inbound-sweep", "rxhub:detect-refills"} <= names
    assert len(names) == len(declared_schedules())  # no schedule declared twice
    assert registry.export("controlled_substance_decisions") is not None
    assert registry.export("no-such-export") is None


def test_an_unregistered_contribution_adds_nothing_and_a_registered_one_shows(client, pharmacist):
    before = len(registry.dashboard_cards())
    try:
        registry.register("probe", menu=[registry.MenuEntry("Probe", "patient-search", "probe", order=99)])
        assert len(registry.dashboard_cards()) == before  # no card offered, none added
        client.force_login(pharmacist)
        assert ">Probe</a>" in client.get("/patients/").content.decode()
    finally:
        registry._registry.pop("probe", None)
    assert ">Probe</a>" not in client.get("/patients/").content.decode()


def test_the_core_and_audit_name_no_app_by_string():
    """No import_module / find_spec of an app in pharmacy/ or audit/ (imports are held by lint-imports)."""
    pattern = re.compile(r"import_module\(|find_spec\(|[\"'](refills|priorauth|reconciliation)\.")
    offenders = []
    for folder in ("pharmacy", "audit"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or path.name == "settings.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line) and "dispatch_uid" not in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
