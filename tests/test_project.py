"""Project-level checks: deploy settings, migrations in step with models, OpenAPI without warnings."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args, env=None):
    # The child sees only what the test gives it of the project's own settings (a caller such as make
    # may have exported one).
    base = {
        k: v for k, v in os.environ.items()
        if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL", "PYTEST_VERSION", "RXHUB_PUBLIC_BASE_URL")
    }
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=300)


def test_deploy_check_passes_with_production_environment(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env={
        "DJANGO_ENV": "production", "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x9#kq2!vL8z@pR4mW7&nB1^tY6*cF3(hJ0)dS5-gA8+eU2=oI4",
        "DJANGO_ALLOWED_HOSTS": "rx.example.org", "RXHUB_AUDIT_KEY": "k" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.sqlite3",
        "RXHUB_PUBLIC_BASE_URL": "https://rx.example.org"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(("public_url", "code"), [
    (None, "rxhub.E001"), ("http://127.0.0.1:8000", "rxhub.E002"), ("http://localhost:8101", "rxhub.E002"),
    ("http://[::1]/", "rxhub.E002")])
def test_deploy_check_fails_without_a_public_base_url(tmp_path, public_url, code):
    env = {"DJANGO_ENV": "production", "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "x9#kq2!vL8z@pR4mW7&nB1^tY6*cF3(hJ0)dS5-gA8+eU2=oI4",
           "DJANGO_ALLOWED_HOSTS": "rx.example.org", "RXHUB_AUDIT_KEY": "k" * 40,
           "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.sqlite3"}
    if public_url:
        env["RXHUB_PUBLIC_BASE_URL"] = public_url
    result = _manage("check", "--deploy", "--tag", "rxhub", env=env)
    assert result.returncode != 0 and code in result.stderr + result.stdout, result.stdout + result.stderr


def test_production_without_secret_key_refuses_to_start():
    result = _manage("check", env={"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": ""})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_no_missing_migrations(tmp_path):
    result = _manage("makemigrations", "--check", "--dry-run",
                     env={"DATABASE_URL": f"sqlite:///{tmp_path}/m.sqlite3"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    result = _manage("spectacular", "--file", str(out), "--validate", "--fail-on-warn",
                     env={"DATABASE_URL": f"sqlite:///{tmp_path}/s.sqlite3"})
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    for path in ("/api/v1/patients/", "/api/v1/prescriptions/", "/api/v1/lab-results/", "/api/v1/auth/token/"):
        assert path in text


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///db.sqlite3", ("django.db.backends.sqlite3", str(ROOT / "db.sqlite3"))),
    ("sqlite:////tmp/x.db", ("django.db.backends.sqlite3", "/tmp/x.db")),
    ("postgres://rx:secret@db.local:5433/rxhub", ("django.db.backends.postgresql", "rxhub")),
])
def test_database_url_parsing(url, expected):
    from pharmacy.settings import database_from_url

    config = database_from_url(url)
    assert (config["ENGINE"], config["NAME"]) == expected
    if "postgres" in url:
        assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"]) == (
            "rx",
            "secret",
            "db.local",
            "5433",
        )


def test_unknown_database_scheme_is_a_clear_error():
    from django.core.exceptions import ImproperlyConfigured

    from pharmacy.settings import database_from_url

    with pytest.raises(ImproperlyConfigured, match="unsupported scheme"):
        database_from_url("mysql://x@y/z")


@pytest.mark.django_db
def test_api_docs_page_uses_no_cdn(client):
    import re as _re

    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    external = [u for u in _re.findall(r'(?:src|href)=["\'](https?://[^"\']+)', html)
                if not u.startswith("http://testserver")]
    assert external == []
    assert "swagger-ui" in html
    for src in _re.findall(r'src=["\'](/static/[^"\']+)', html):
        assert client.get(src).status_code == 200, src


def test_lint_is_clean():
    """`ruff check .` (pyproject's rules) finds nothing: lint breaks the build, not just the style."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", ".", "--output-format", "concise"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- The import contract (issue 12): layers held by import-linter ------------------------------------

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
ROOT_PACKAGES = ("pharmacy", "refills", "priorauth", "reconciliation", "audit")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_import_contract_holds():
    """`lint-imports` with pyproject's contracts: the workflow apps never import each other, audit
    never imports them, the core never imports audit or an app, pharmacy.interop stays pure."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout, result.stdout


def _copy_of_the_project(tmp_path: Path) -> Path:
    for package in ROOT_PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns(
            "__pycache__", "*.json", "*.html", "data", "static", "templates"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "source", "broken"), [
    ("refills/wrong_import.py", "from priorauth.models import PACase\n", "refills.wrong_import -> priorauth.models"),
    ("audit/wrong_import.py", "import reconciliation.selectors\n", "audit.wrong_import -> reconciliation.selectors"),
    ("pharmacy/wrong_import.py", "def f():\n    from audit.events import record_event\n",
     "pharmacy.wrong_import -> audit.events"),
    ("pharmacy/interop/wrong_import.py", "from pharmacy.models import Drug\n",
     "pharmacy.interop.wrong_import -> pharmacy.models"),
])
def test_import_contract_fails_on_a_wrong_import(tmp_path, module, source, broken):
    """The same contracts over a copy of the project with one forbidden import added: broken."""
    copy = _copy_of_the_project(tmp_path)
    (copy / module).write_text(source, encoding="utf-8")
    result = _lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and broken in result.stdout, result.stdout
