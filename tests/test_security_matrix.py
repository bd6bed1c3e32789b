"""Every URL × every role (and anonymous): allowed or denied, generated from the URL configuration.

Each endpoint must declare its roles (``allowed_roles`` on the DRF view, ``role_required`` on HTML
views) or be listed in PUBLIC with the reason; a new endpoint without a rule fails this test.
"""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import SAFE_METHODS

from pharmacy.roles import ALL_ROLES

# Endpoints anyone may reach, with why.
PUBLIC = {
    "login": "the login page",
    "logout": "logging out",
    "api-token": "exchanges credentials for a token",
    "api-schema": "the OpenAPI description holds no patient data",
    "api-docs": "the API docs page holds no patient data",
    "prescriber-link": "signed single-use link; the token is the credential",
    "prescriber-link-done": "confirmation page after a link answer",
}
SKIP_PREFIXES = ("admin/", "static/")


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _concrete_path(route: str) -> str:
    def value(name: str) -> str:
        return "999999" if name in ("pk", "id") or name.endswith("_id") else "x" * 8

    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1)), route)
    path = re.sub(r"<(?:int:|slug:|str:|uuid:)?(\w+)>", lambda m: value(m.group(1)), path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("\\Z", "").replace("\\", "")
    return "/" + path


def endpoints():
    rows = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(SKIP_PREFIXES) or "format" in route:
            continue
        callback = pattern.callback
        name = pattern.name or ""
        if name in PUBLIC:
            rows.append((name, _concrete_path(route), "public", None))
            continue
        cls = getattr(callback, "cls", None)
        if cls is not None:
            actions = getattr(callback, "actions", None) or {}
            if cls.__name__ == "APIRootView":
                rules = getattr(cls, "allowed_roles", None)
                rows.append((name, _concrete_path(route), "get", frozenset(rules["read"]) if rules else None))
                continue
            rules = getattr(cls, "allowed_roles", None)
            methods = actions or {m: m for m in ("get", "post") if hasattr(cls, m)}
            for method, action in methods.items():
                if method in ("put", "patch", "delete", "head", "options"):
                    continue
                roles = None
                if rules is not None:
                    roles = rules.get(action) or rules.get("read" if method.upper() in SAFE_METHODS else "write")
                rows.append((name, _concrete_path(route), method, frozenset(roles) if roles is not None else None))
        else:
            roles = getattr(callback, "allowed_roles", None)
            rows.append((name, _concrete_path(route), "get", roles))
    return rows


ENDPOINTS = endpoints()


def test_every_endpoint_declares_its_roles():
    undeclared = [
        (name, path, method) for name, path, method, roles in ENDPOINTS if method != "public" and roles is None
    ]
    assert not undeclared, f"endpoints without a role rule: {undeclared}"
    assert len(ENDPOINTS) > 20


CASES = [row for row in ENDPOINTS if row[2] != "public"]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path", "method", "roles"), CASES, ids=[f"{c[2]}:{c[1]}" for c in CASES])
def test_role_matrix(client, make_user, name, path, method, roles):
    is_api = path.startswith("/api/")
    wrong = []
    for role in (*ALL_ROLES, None):
        client.logout()
        if role is not None:
            client.force_login(make_user(role))
        kwargs = {"content_type": "application/json", "data": "{}"} if method == "post" else {}
        response = getattr(client, method)(path, **kwargs)
        code = response.status_code
        to_login = code == 302 and "/login/" in response.get("Location", "")
        if role is not None and role in roles:
            ok = code not in (401, 403) and not to_login
        elif role is None:
            ok = code in (401, 403) if is_api else to_login
        else:
            ok = code == 403
        if not ok:
            wrong.append(f"{role or 'anonymous'} got {code}")
    assert not wrong, f"{method.upper()} {path} (allowed: {sorted(roles)}): " + "; ".join(wrong)
