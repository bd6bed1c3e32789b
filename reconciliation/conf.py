"""Reconciliation settings (policy defaults; override in settings.RXHUB)."""
from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # Non-adherence reported to the prescriber below this PDC (80 % is the usual threshold, STANDARDS.md).
    "RECON_PDC_THRESHOLD": 0.8,
    "RECON_PDC_WINDOW_DAYS": 180,
    # Patient matching on name + birth date (+ sex): a single candidate at or above this score matches.
    "RECON_MATCH_THRESHOLD": 0.9,
    # Inbound payload size limit (untrusted input, DESIGN.md).
    "RECON_MAX_PAYLOAD_BYTES": 5_000_000,
    # EHR pull: per-request timeout and attempts.
    "RECON_PULL_TIMEOUT_SECONDS": 10,
    "RECON_PULL_ATTEMPTS": 3,
    # MLLP: a connection idle this long is closed (a half-open client never holds a worker).
    "RECON_MLLP_IDLE_SECONDS": 60,
    "RECON_MLLP_WORKERS": 4,
}


def conf(name: str):
    return settings.RXHUB.get(name, DEFAULTS[name])
