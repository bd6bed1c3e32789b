"""Shared fixtures: users per role, API clients, and plain-HTTP settings for the test server."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"

# --- NCPDP SCRIPT schema validation (NCPDP_XSD_DIR: a member's copy of the official 2017071 XSDs) ---
# When set, every NCPDP message the suite puts in the outbox and every NCPDP answer we give is
# validated against the official schema as it is saved (a test making an invalid one fails), and the
# builder variants are validated in tests/interop/test_ncpdp_schema.py. When unset, one line says so.
# The suite's switch is the same variable pharmacy/settings.py reads into RXHUB["NCPDP_XSD_DIR"]
# (PharmacyConfig.ready() hands it to the codec); handed down here too for pure runs (-p no:django).
NCPDP_XSD_DIR = os.environ.get("NCPDP_XSD_DIR", "").strip()
NCPDP_SKIPPED = "NCPDP SCRIPT schema validation skipped: NCPDP_XSD_DIR is not set (structural tests only)"
_validated = {"messages": 0}


def pytest_configure(config):
    from pharmacy.interop.ncpdp import schema

    if NCPDP_XSD_DIR and not schema.configured_dir():
        schema.configure(NCPDP_XSD_DIR)


def pytest_report_header(config):
    if NCPDP_XSD_DIR:
        return (f"NCPDP SCRIPT schema validation on: {NCPDP_XSD_DIR} (every builder variant, every NCPDP outbox "
                "message and inbound answer)")
    return NCPDP_SKIPPED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if NCPDP_XSD_DIR:
        if not hasattr(config, "workerinput") and _validated["messages"]:
            terminalreporter.write_line(f"NCPDP SCRIPT schema validation: {_validated['messages']} outbox messages "
                                        "and answers validated in this process, all valid")
    else:
        terminalreporter.write_line(NCPDP_SKIPPED)


def _validate_saved_ncpdp(sender, instance, **kwargs):
    from pharmacy.interop import ncpdp

    kind = getattr(instance, "kind", "")
    payloads = [instance.payload] if kind.startswith("ncpdp:") else []
    if sender.__name__ == "InboundNcpdpMessage" and instance.answer:
        payloads = [instance.answer]
    for xml in payloads:
        errors = ncpdp.validate_against_xsd(xml, NCPDP_XSD_DIR)
        assert errors == [], f"{sender.__name__} {kind or instance.pk}: not valid against NCPDP_XSD_DIR: {errors[:3]}"
        _validated["messages"] += 1


@pytest.fixture(autouse=True, scope="session")
def _ncpdp_outbox_schema_check():
    """With NCPDP_XSD_DIR set: validate every NCPDP outbox message and inbound answer when saved."""
    if not NCPDP_XSD_DIR:
        yield
        return
    try:
        from django.db.models.signals import post_save

        from pharmacy.models import OutboxMessage
        from refills.models import InboundNcpdpMessage
    except Exception:  # noqa: BLE001 — pure runs without Django (-p no:django)
        yield
        return
    post_save.connect(_validate_saved_ncpdp, sender=OutboxMessage, dispatch_uid="ncpdp-xsd-outbox")
    post_save.connect(_validate_saved_ncpdp, sender=InboundNcpdpMessage, dispatch_uid="ncpdp-xsd-inbound")
    yield
    post_save.disconnect(dispatch_uid="ncpdp-xsd-outbox", sender=OutboxMessage)
    post_save.disconnect(dispatch_uid="ncpdp-xsd-inbound", sender=InboundNcpdpMessage)


@pytest.fixture(autouse=True)
def _plain_http(request, tmp_path):
    # The test client and live server speak plain HTTP; production settings redirect to HTTPS.
    # Pure-rule tests may run without pytest-django (-p no:django): nothing to set then.
    try:
        settings = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        return
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.AXES_ENABLED = False
    settings.RXHUB = {**settings.RXHUB, "OUTBOX_DIR": str(tmp_path / "outbox"),
                      "AUDIT_ANCHOR_FILE": str(tmp_path / "audit-anchor.log")}
    # django-q2 reads its configuration once at import: run tasks inline in tests.
    from django_q.conf import Conf

    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(Conf, "SYNC", True)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from pharmacy.roles import sync_role_permissions

    counter = {"n": 0}

    def factory(role: str | None = None, *, username: str | None = None, password: str = "test-pass-123456",
                **extra):
        if not Group.objects.filter(name="pharmacist").exists() or (
            role and not Group.objects.get_or_create(name=role)[0].permissions.exists()
        ):
            sync_role_permissions()
        counter["n"] += 1
        user = get_user_model().objects.create_user(
            username=username or f"{role or 'nobody'}{counter['n']}", password=password, **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return factory


@pytest.fixture
def pharmacist(make_user):
    return make_user("pharmacist", first_name="Paula", last_name="Reyes")


@pytest.fixture
def technician(make_user):
    return make_user("technician")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", is_staff=True)


@pytest.fixture
def integrator(make_user):
    return make_user("integrator")


@pytest.fixture
def api_client_for(make_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def factory(role: str | None = None, user=None):
        client = APIClient()
        if user is None and role is not None:
            user = make_user(role)
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
            client.user = user
        return client

    return factory


def corpus_files(*parts: str, pattern: str = "*") -> list[Path]:
    base = CORPUS.joinpath(*parts)
    return sorted(p for p in base.rglob(pattern) if p.is_file())



class _Receiver:
    """A real HTTP server on 127.0.0.1 standing in for an outside party (pharmacy, payer, SMS
    gateway). Records each request; ``fail_next(n, status)`` makes the next n answers fail;
    ``reply(status, body)`` sets the normal answer (a callable gets the request and returns one)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.requests: list[dict] = []
        self.failures: list[int] = []
        self.status, self.body, self.content_type = 200, "", "text/plain"
        self.responder = None

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                record = {"method": self.command, "path": self.path, "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}}
                receiver.requests.append(record)
                if receiver.failures:
                    status, text, ctype = receiver.failures.pop(0), "temporarily unavailable", "text/plain"
                elif receiver.responder is not None:
                    status, text, ctype = receiver.responder(record)
                else:
                    status, text, ctype = receiver.status, receiver.body, receiver.content_type
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail_next(self, count: int, status: int = 503):
        self.failures.extend([status] * count)

    def reply(self, status: int = 200, body: str = "", content_type: str = "text/plain"):
        self.status, self.body, self.content_type = status, body, content_type

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver():
    receiver = _Receiver()
    yield receiver
    receiver.close()
