"""What each app adds to the shared pages and machinery (issue 12: the core never names an app).

Each app's ``AppConfig.ready()`` calls ``register(self, …)`` with what it contributes:

- ``urls`` — its URLconf (module or dotted path), mounted at ``/<app label>/``;
- ``dashboard_card(user=…) -> QueueSummary`` — its queue card on the dashboard;
- ``patient_panels(patient=…, user=…) -> list[dict]`` — sections of the patient page (each a dict
  with ``title``, ``template``, ``context``; a fixed number of queries each);
- ``prescription_actions(prescriptions=…, user=…) -> {prescription id: [dict]}`` — buttons on the
  patient page's prescription list (each a dict with ``label``, ``url`` to POST to and ``fields``,
  the hidden inputs; no query per row);
- ``menu`` — ``MenuEntry`` items for the top navigation;
- ``schedules`` — django-q2 schedule specs (synced by ``manage.py sync_schedules``);
- ``api_register(router)`` / ``api_urlpatterns`` — viewsets and plain paths under ``/api/v1/``;
- ``role_permissions`` — ``{role: {"app.codename", …}}`` merged into the role groups;
- ``demo_seed(ctx)`` — demo rows for ``manage.py seed_demo``;
- ``exports`` — ``{name: callable}`` data providers other layers read (the audit exports);
- ``fill_recorded(fill=…, actor=…, reason=…)`` — called by ``pharmacy.services.fill_record`` for
  every new fill, inside the fill's transaction (reconciliation queues the EHR dispense share as an
  outbox row); instead of a ``post_save`` receiver, so the write has the fill's actor and reason.

The core reads the registry in INSTALLED_APPS order; an app that is not installed simply adds
nothing. Nothing here imports an app.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.apps import AppConfig, apps


@dataclass(frozen=True)
class MenuEntry:
    """A top-menu link. Shown only when its view admits one of the person's roles (the view's
    ``role_required`` rule), so no menu link leads to a 403."""

    label: str
    url_name: str  # reversed when the menu is drawn; an entry whose URL is not installed is left out
    key: str  # the resolver's app_name (or URL name) that marks the entry as the current page
    order: int = 100


@dataclass(frozen=True)
class Contribution:
    app_label: str
    urls: object | None = None
    dashboard_card: Callable | None = None
    patient_panels: Callable | None = None
    prescription_actions: Callable | None = None
    menu: tuple[MenuEntry, ...] = ()
    schedules: tuple[dict, ...] = ()
    api_register: Callable | None = None
    api_urlpatterns: tuple = ()
    role_permissions: Mapping[str, Iterable[str]] = field(default_factory=dict)
    demo_seed: Callable | None = None
    exports: Mapping[str, Callable] = field(default_factory=dict)
    fill_recorded: Callable | None = None


_registry: dict[str, Contribution] = {}


def register(app: AppConfig | str, *, menu: Iterable[MenuEntry] = (), schedules: Iterable[dict] = (),
             api_urlpatterns: Iterable = (), **kwargs) -> Contribution:
    """Record what ``app`` contributes (called from its ``AppConfig.ready()``; calling again replaces)."""
    label = app if isinstance(app, str) else app.label
    contribution = Contribution(app_label=label, menu=tuple(menu), schedules=tuple(schedules),
                                api_urlpatterns=tuple(api_urlpatterns), **kwargs)
    _registry[label] = contribution
    return contribution


def contributions() -> list[Contribution]:
    """Every registered contribution, in INSTALLED_APPS order."""
    order = {config.label: i for i, config in enumerate(apps.get_app_configs())}
    return sorted(_registry.values(), key=lambda c: order.get(c.app_label, len(order)))


def dashboard_cards() -> list[Callable]:
    return [c.dashboard_card for c in contributions() if c.dashboard_card is not None]


def patient_panel_providers() -> list[Callable]:
    return [c.patient_panels for c in contributions() if c.patient_panels is not None]


def prescription_action_providers() -> list[Callable]:
    return [c.prescription_actions for c in contributions() if c.prescription_actions is not None]


def menu_entries() -> list[MenuEntry]:
    entries = [entry for c in contributions() for entry in c.menu]
    return sorted(entries, key=lambda e: e.order)  # stable: same order keeps INSTALLED_APPS order


def schedules() -> list[dict]:
    return [dict(spec) for c in contributions() for spec in c.schedules]


def role_permissions() -> list[Mapping[str, Iterable[str]]]:
    return [c.role_permissions for c in contributions() if c.role_permissions]


def demo_seeders() -> list[Callable]:
    return [c.demo_seed for c in contributions() if c.demo_seed is not None]


def fill_recorded_hooks() -> list[Callable]:
    return [c.fill_recorded for c in contributions() if c.fill_recorded is not None]


def export(name: str) -> Callable | None:
    """The data provider an app registered under ``name`` (None when no installed app offers it)."""
    for c in contributions():
        if name in c.exports:
            return c.exports[name]
    return None
