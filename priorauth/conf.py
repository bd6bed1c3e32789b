"""PA settings: a typed accessor over settings.RXHUB (read at call time, so tests can change them).

Payer endpoints and credentials live here, never in the database or its history:
settings.RXHUB["PAYERS"] (set from the JSON environment variable RXHUB_PAYERS in settings), keyed by
``Payer.endpoint_key``::

    {"blueharbor": {"submit_url": "https://payer.example/epa", "status_url": "https://payer.example/epa/status",
                    "token_env": "BLUEHARBOR_TOKEN"}}

A payer without an entry gets its submissions written to the file outbox.
"""

from __future__ import annotations

from django.conf import settings

from pharmacy.secrets import secret_named


def _rx() -> dict:
    return getattr(settings, "RXHUB", {})


def payers() -> dict:
    configured = _rx().get("PAYERS")
    return configured if isinstance(configured, dict) else {}


def payer_endpoint(key: str) -> dict:
    return payers().get(key, {}) if key else {}


def renewal_window_days() -> int:
    # Issue 8: approvals expiring within this window open a renewal (default 30 days).
    return int(_rx().get("PA_RENEWAL_WINDOW_DAYS", 30))


def lab_lookback_days() -> int:
    return int(_rx().get("PA_LAB_LOOKBACK_DAYS", 365))


def drafter_config() -> dict:
    """Optional language-model drafter (off by default): {"ENABLED", "URL", "MODEL", "TOKEN_ENV"}."""
    config = _rx().get("PA_DRAFTER")
    if not isinstance(config, dict):
        config = {"ENABLED": False, "URL": "", "MODEL": "", "TOKEN_ENV": ""}
    return config


def drafter():
    from .drafting import get_drafter

    config = drafter_config()
    token = secret_named(config.get("TOKEN_ENV") or "")
    return get_drafter(config, token)


def sender_id() -> str:
    return str(_rx().get("PA_SENDER_ID", "RXHUB"))
