from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from . import registry
from .registry import MenuEntry
from .roles import INTEGRATOR, user_roles

# The main menu: the core's entries and those each app registers (pharmacy/registry.py), in order.
# An entry is shown only when the view behind it admits one of the person's roles (its
# role_required rule), so no link leads to a 403.
CORE_MENU = (
    MenuEntry("Dashboard", "dashboard", "dashboard", order=10),
    MenuEntry("Patients", "patient-search", "patient-search", order=20),
    MenuEntry("Outbox", "outbox", "outbox", order=60),
    MenuEntry("API tokens", "api-tokens", "api-tokens", order=80),
)


def menu_for(roles) -> list[dict]:
    items = []
    for entry in registry.menu_entries():
        label, name, key = entry.label, entry.url_name, entry.key
        if key == "dashboard" and roles == {INTEGRATOR}:
            continue  # an integrator's start page is its API tokens
        try:
            url = reverse(name)
            allowed = getattr(resolve(url).func, "allowed_roles", None)
        except (NoReverseMatch, Resolver404):
            continue
        if allowed is not None and roles & set(allowed):
            items.append({"label": label, "url": url, "key": key})
    return items


def roles(request):
    current = user_roles(getattr(request, "user", None))
    return {"user_roles": current, "is_pharmacist": "pharmacist" in current or "admin" in current,
            "main_menu": (menu := menu_for(current) if current else []),
            "can_search_patients": any(item["key"] == "patient-search" for item in menu)}
