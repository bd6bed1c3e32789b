from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from .roles import INTEGRATOR, user_roles

# The main menu: (label, URL name, app whose pages mark it current). An entry is shown only when the
# view behind it admits one of the person's roles (its role_required rule), so no link leads to a 403.
MENU = [
    ("Dashboard", "dashboard", "dashboard"),
    ("Patients", "patient-search", "patient-search"),
    ("Refills", "refills:queue", "refills"),
    ("Prior auth", "priorauth:queue", "priorauth"),
    ("Reconciliation", "reconciliation:queue", "reconciliation"),
    ("Outbox", "outbox", "outbox"),
    ("Audit", "audit:access-log", "audit"),
    ("API tokens", "api-tokens", "api-tokens"),
]


def menu_for(roles) -> list[dict]:
    items = []
    for label, name, key in MENU:
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
