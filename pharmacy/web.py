"""Helpers the apps' HTML views share."""
from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError

from .errors import DomainError


def run_action(request, action: Callable[[], object], success: str) -> bool:
    """Call a service from a form post; its refusal (illegal transition, validation, role) becomes
    an error message naming why, its success a confirmation. Returns whether it succeeded."""
    try:
        action()
    except (DomainError, ValidationError, PermissionDenied) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else (str(exc) or "Not allowed.")
        messages.error(request, text)
        return False
    messages.success(request, success)
    return True
