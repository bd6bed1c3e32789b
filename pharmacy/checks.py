"""`check --deploy`: links sent to prescribers and patients carry RXHUB_PUBLIC_BASE_URL; in
production it must be set to the address people reach, never a loopback one (the e-mailed link
would point at the reader's own machine)."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from django.conf import settings
from django.core.checks import Error, register

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def is_loopback_url(url: str) -> bool:
    host = (urlparse(url or "").hostname or "").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


@register("rxhub", deploy=True)
def public_base_url_check(app_configs=None, **kwargs):
    if not getattr(settings, "PRODUCTION", False):
        return []
    url = settings.RXHUB.get("PUBLIC_BASE_URL", "")
    explicit = settings.RXHUB.get("PUBLIC_BASE_URL_SET", True)
    if not explicit or not url:
        return [Error("RXHUB_PUBLIC_BASE_URL is not set.", id="rxhub.E001",
                      hint="Set it to the address prescribers and patients open, e.g. https://rx.example.org "
                           "(links in e-mails and SMS are built from it).")]
    if is_loopback_url(url):
        return [Error(f"RXHUB_PUBLIC_BASE_URL is a loopback address ({url}).", id="rxhub.E002",
                      hint="Links sent by e-mail and SMS would point at the reader's own computer; use the "
                           "public address of this server.")]
    return []
