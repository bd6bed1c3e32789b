"""Shared fixtures: users per role, API clients, and plain-HTTP settings for the test server."""
from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"


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
