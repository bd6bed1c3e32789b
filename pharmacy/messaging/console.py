"""Development console backends that never print a message's content.

A prescriber link in an e-mail is a live credential and a patient notice is PHI (45 CFR 164.312(b);
164.502(b) minimum necessary), so the console says only that a message was sent, to whom (masked)
and how long it was. Production refuses these backends (pharmacy/settings.py)."""
from __future__ import annotations

import logging
import re

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("rxhub.messaging.console")


def mask_address(address: str) -> str:
    """``jane.doe@example.org`` → ``j***@e***.org``; ``+1 617-555-0142`` → ``***0142``."""
    address = (address or "").strip()
    name, _, domain = address.rpartition("<")[2].rstrip(">").partition("@")
    if domain:
        host, dot, tld = domain.rpartition(".")
        host = host or tld
        return f"{name[:1]}***@{host[:1]}***{dot}{tld if dot else ''}"
    digits = re.sub(r"\D", "", address)
    if len(digits) >= 4:
        return f"***{digits[-4:]}"
    return "***"


class MaskedConsoleEmailBackend(BaseEmailBackend):
    """Logs one line per e-mail: masked recipients and the body's length, no subject or body."""

    def send_messages(self, email_messages):
        sent = 0
        for message in email_messages or []:
            recipients = ", ".join(mask_address(to) for to in message.recipients())
            logger.info("[e-mail] sent to %s (%d characters, content not shown)", recipients,
                        len(message.body or ""))
            sent += 1
        return sent
