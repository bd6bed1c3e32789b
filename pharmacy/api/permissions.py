"""Every API view declares who may use it: ``allowed_roles = {"read": {...}, "write": {...}}``
(or per action, e.g. ``"approve": {...}``). A view without a declaration is closed to everyone."""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from pharmacy.roles import user_roles


def roles_for(view, request) -> frozenset[str]:
    rules = getattr(view, "allowed_roles", None)
    if not rules:
        return frozenset()
    action = getattr(view, "action", None)
    if action and action in rules:
        return frozenset(rules[action])
    return frozenset(rules.get("read" if request.method in SAFE_METHODS else "write", ()))


class RolePermission(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if request.method == "OPTIONS" and request.user and request.user.is_authenticated:
            return True
        return bool(user_roles(request.user) & roles_for(view, request))
