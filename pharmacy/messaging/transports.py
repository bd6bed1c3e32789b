"""Transports deliver one OutboxMessage. Each raises DeliveryError on failure; a delivery that
the receiver already has (same message ID) counts as delivered."""
from __future__ import annotations

import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

from pharmacy.secrets import secret_named

MLLP_START, MLLP_END = b"\x0b", b"\x1c\r"


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def deliver_file(message) -> str:
    """Write the payload to <OUTBOX_DIR>/<kind>/<message_id>.<ext>, atomically (temp + rename)."""
    folder = Path(message.destination or settings.RXHUB["OUTBOX_DIR"]) / message.kind.replace(":", "-")
    folder.mkdir(parents=True, exist_ok=True)
    ext = {"application/xml": "xml", "application/fhir+json": "json", "application/json": "json",
           "application/hl7-v2": "hl7", "text/plain": "txt"}.get(message.content_type, "dat")
    target = folder / f"{message.message_id}.{ext}"
    if target.exists():
        return f"already in {target}"
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False, suffix=".part") as handle:
        handle.write(message.payload)
        temp = handle.name
    os.replace(temp, target)
    return f"written to {target}"


def deliver_http(message) -> str:
    if not message.destination:
        raise DeliveryError("No HTTP endpoint configured for this destination.", permanent=True)
    headers = {"Content-Type": message.content_type, "X-Message-ID": message.message_id,
               "Idempotency-Key": message.message_id, "User-Agent": "RxWorkflowHub/1"}
    if message.credentials_env:
        token = secret_named(message.credentials_env)
        if not token:
            raise DeliveryError(f"Environment variable {message.credentials_env} (endpoint token) is not set.")
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(message.destination, data=message.payload.encode("utf-8"), headers=headers,
                                     method="POST")
    timeout = settings.RXHUB.get("HTTP_TIMEOUT_SECONDS", 15)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured endpoint)
            return response.read(64_000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        body = exc.read(4000).decode("utf-8", "replace")
        if exc.code == 409:  # receiver already has this message ID
            return body or "duplicate accepted"
        raise DeliveryError(f"HTTP {exc.code} from {message.destination}: {body[:300]}",
                            permanent=400 <= exc.code < 500 and exc.code not in (408, 429)) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"Could not reach {message.destination}: {exc}") from exc


def deliver_mllp(message) -> str:
    """Send an HL7 v2 message over MLLP (host:port) and return the ACK; AE/AR raise."""
    host, _, port = message.destination.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.sendall(MLLP_START + message.payload.encode("utf-8") + MLLP_END)
            data = b""
            while not data.endswith(MLLP_END):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise DeliveryError(f"MLLP connection to {message.destination} failed: {exc}") from exc
    ack = data.strip(b"\x0b\x1c\r").decode("utf-8", "replace")
    if "MSA|AA" not in ack and "MSA|CA" not in ack:
        raise DeliveryError(f"Receiver did not accept: {ack[:200]}")
    return ack


def deliver_email(message) -> str:
    EmailMessage(subject=message.subject or "Message from your pharmacy", body=message.payload,
                 to=[message.destination]).send(fail_silently=False)
    return "e-mail handed to the mail backend"


class ConsoleSmsBackend:
    """Development SMS backend: logs that a text went out, to whom (masked), never the text
    (it may carry PHI or a link). Refused in production (pharmacy/settings.py)."""

    def send(self, *, to: str, text: str, message_id: str) -> str:
        import logging

        from .console import mask_address

        logging.getLogger("rxhub.messaging.console").info(
            "[sms] %s sent to %s (%d characters, content not shown)", message_id, mask_address(to), len(text))
        return "logged to console (content not shown)"


class HttpSmsBackend:
    """POSTs JSON {to, text, message_id} to RXHUB_SMS_URL with a bearer token from RXHUB_SMS_TOKEN."""

    def send(self, *, to: str, text: str, message_id: str) -> str:
        import json

        url = settings.RXHUB.get("SMS_URL", "")
        if not url:
            raise DeliveryError("RXHUB_SMS_URL is not set for the HTTP SMS backend.", permanent=True)
        body = json.dumps({"to": to, "text": text, "message_id": message_id}).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message_id}
        if settings.RXHUB.get("SMS_TOKEN"):
            headers["Authorization"] = f"Bearer {settings.RXHUB['SMS_TOKEN']}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=15) as r:  # noqa: S310
                return r.read(4000).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"SMS gateway failed: {exc}") from exc


def sms_backend():
    path = settings.RXHUB.get("SMS_BACKEND", "pharmacy.messaging.transports.ConsoleSmsBackend")
    return import_string(path)()


def deliver_sms(message) -> str:
    return sms_backend().send(to=message.destination, text=message.payload, message_id=message.message_id)


TRANSPORTS = {"file": deliver_file, "http": deliver_http, "mllp": deliver_mllp, "email": deliver_email,
              "sms": deliver_sms}
