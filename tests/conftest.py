"""Shared fixtures: users per role, API clients, and plain-HTTP settings for the test server."""
from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(autouse=True)
def _plain_http(settings, tmp_path):
    # The test client and live server speak plain HTTP; production settings redirect to HTTPS.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.AXES_ENABLED = False
    settings.RXHUB = {**settings.RXHUB, "OUTBOX_DIR": str(tmp_path / "outbox")}
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
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

