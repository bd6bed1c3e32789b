"""Issue 14 item 5: strict DJANGO_HTTPS parsing, production refuses console backends and a missing
audit key, and the development console backends never print a message's content."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "x9#kq2!vL8z@pR4mW7&nB1^tY6*cF3(hJ0)dS5-gA8+eU2=oI4",
        "DJANGO_ALLOWED_HOSTS": "rx.example.org", "RXHUB_AUDIT_KEY": "k" * 40}
SHOW = ("import django,os;os.environ.setdefault('DJANGO_SETTINGS_MODULE','pharmacy.settings');django.setup();"
        "from django.conf import settings as s;print(s.HTTPS, s.EMAIL_BACKEND, s.RXHUB['SMS_BACKEND'])")


def _settings(env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "PYTEST_VERSION", "DJANGO_HTTPS", "DJANGO_ENV", "EMAIL_BACKEND",
                         "RXHUB_SMS_BACKEND", "RXHUB_AUDIT_KEY", "DJANGO_DEBUG")}
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("value", "default", "expected"), [
    (None, True, True), ("", True, True), ("  ", True, True), ("", False, False),
    ("1", False, True), ("TRUE", False, True), ("yes", False, True), ("On", False, True),
    ("0", True, False), ("false", True, False), ("NO", True, False), ("off", True, False),
])
def test_env_bool_is_strict_and_empty_keeps_the_default(monkeypatch, value, default, expected):
    from pharmacy.settings import env_bool

    if value is None:
        monkeypatch.delenv("RXHUB_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("RXHUB_TEST_FLAG", value)
    assert env_bool("RXHUB_TEST_FLAG", default) is expected


@pytest.mark.parametrize("value", ["2", "enable", "ture", "0n"])
def test_env_bool_refuses_anything_else(monkeypatch, value):
    from django.core.exceptions import ImproperlyConfigured

    from pharmacy.settings import env_bool

    monkeypatch.setenv("DJANGO_HTTPS", value)
    with pytest.raises(ImproperlyConfigured, match="DJANGO_HTTPS"):
        env_bool("DJANGO_HTTPS", True)


def test_empty_django_https_keeps_https_on_in_production():
    result = _settings({**PROD, "DJANGO_HTTPS": ""})
    assert result.returncode == 0, result.stderr
    https, email, sms = result.stdout.split()
    assert https == "True"
    assert email == "django.core.mail.backends.smtp.EmailBackend"
    assert sms == "pharmacy.messaging.transports.HttpSmsBackend"


@pytest.mark.parametrize(("env", "named"), [
    ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "EMAIL_BACKEND"),
    ({"EMAIL_BACKEND": "pharmacy.messaging.console.MaskedConsoleEmailBackend"}, "EMAIL_BACKEND"),
    ({"RXHUB_SMS_BACKEND": "pharmacy.messaging.transports.ConsoleSmsBackend"}, "RXHUB_SMS_BACKEND"),
    ({"RXHUB_AUDIT_KEY": ""}, "RXHUB_AUDIT_KEY"),
    ({"RXHUB_AUDIT_KEY": "short"}, "RXHUB_AUDIT_KEY"),
    ({"DJANGO_HTTPS": "maybe"}, "DJANGO_HTTPS"),
])
def test_production_refuses_to_start(env, named):
    result = _settings({**PROD, **env})
    assert result.returncode != 0
    assert named in result.stderr and "ImproperlyConfigured" in result.stderr


def test_development_defaults_are_the_masked_console_backends():
    result = _settings({"DJANGO_HTTPS": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:] == ["pharmacy.messaging.console.MaskedConsoleEmailBackend",
                                         "pharmacy.messaging.transports.ConsoleSmsBackend"]


@pytest.mark.parametrize(("address", "masked"), [
    ("jane.doe@example.org", "j***@e***.org"), ("Jane <jane@mail.clinic.com>", "j***@m***.com"),
    ("+1 617-555-0142", "***0142"), ("12", "***"), ("", "***"),
])
def test_mask_address(address, masked):
    from pharmacy.messaging.console import mask_address

    assert mask_address(address) == masked


def test_console_backends_log_the_masked_recipient_never_the_content(caplog, capsys, settings, monkeypatch):
    from django.core.mail import EmailMessage

    # Another test may have re-run logging's dictConfig (which disables existing loggers).
    monkeypatch.setattr(logging.getLogger("rxhub.messaging.console"), "disabled", False)

    from pharmacy.messaging.transports import ConsoleSmsBackend

    settings.EMAIL_BACKEND = "pharmacy.messaging.console.MaskedConsoleEmailBackend"
    token = "tok_Zq8mN3vXb2LkP9sR"
    caplog.set_level(logging.INFO)
    EmailMessage(subject="Renewal for Zebulon Quackenbush", to=["dr.quinn@clinic.example.org"],
                 body=f"Approve: https://rx.example.org/refills/link/{token}/").send()
    ConsoleSmsBackend().send(to="+1 617-555-0142", text=f"Hi Zebulon, your lisinopril is ready {token}",
                             message_id="msg-42")
    printed = caplog.text + "".join(capsys.readouterr())
    assert "d***@c***.org" in printed and "***0142" in printed and "msg-42" in printed
    for secret in (token, "Zebulon", "Quackenbush", "lisinopril", "dr.quinn", "617-555"):
        assert secret not in printed
