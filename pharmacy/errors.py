"""Domain errors: services raise them; views show them as messages, the API as 409 with a code."""
from __future__ import annotations


class DomainError(Exception):
    status_code = 409
    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, errors: dict | None = None):
        super().__init__(message)
        if code:
            self.code = code
        self.errors = errors or {}


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"

    def __init__(self, *, model: str, current: str, target: str, message: str | None = None):
        super().__init__(message or f"A {model} that is {current} cannot become {target}.")
        self.current, self.target = current, target


class AlreadyClaimed(DomainError):
    code = "already_claimed"


class Conflict(DomainError):
    code = "conflict"
