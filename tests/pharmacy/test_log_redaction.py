"""The web server's access log never holds a prescriber link's token (a bearer credential)."""
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pharmacy.log_redaction import redact_path
from pharmacy.management.commands.serve import ACCESS_LOG_FORMAT

ROOT = Path(__file__).resolve().parents[2]


def test_redact_path_hides_only_the_token():
    assert redact_path("/refills/link/abc.DEF-123_x/") == "/refills/link/[redacted]/"
    assert redact_path("GET /refills/link/abc/ HTTP/1.1") == "GET /refills/link/[redacted]/ HTTP/1.1"
    assert redact_path("/refills/link/done/") == "/refills/link/done/"
    assert redact_path("/refills/42/") == "/refills/42/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_access_log_written_by_serve_settings_has_no_token(tmp_path):
    port, token = _free_port(), "Zq7secretTOKENvalue"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DJANGO_HTTPS": "0",
           "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "pharmacy.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT,
         "--logger-class", "pharmacy.log_redaction.RedactingLogger"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/refills/link/{token}/", timeout=5)
                break
            except urllib.error.HTTPError:
                break  # any answer is logged; the page itself is tested elsewhere
            except OSError:
                time.sleep(0.1)
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert "/refills/link/[redacted]/" in output
    assert token not in output
    assert "--logger-class" in (ROOT / "pharmacy/management/commands/serve.py").read_text()


def test_django_request_warnings_are_redacted_by_the_console_filter():
    import logging

    from pharmacy.log_redaction import RedactSecretsFilter

    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Gone: %s", ("/refills/link/tok123/",),
                               None)
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "Gone: /refills/link/[redacted]/"
    from django.conf import settings

    assert "redact_secrets" in settings.LOGGING["handlers"]["console"]["filters"]
