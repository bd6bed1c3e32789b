"""Run the whole application: gunicorn web server + django-q2 cluster (+ MLLP listener when installed)."""
import os
import signal
import subprocess
import sys
import time
from importlib import util

from django.core.management.base import BaseCommand

# Access log without query strings or referrers: a patient search (?q=<name>) must not put PHI
# into the logs (HIPAA 45 CFR 164.312(b); see tests/audit/test_access_control.py). Paths carry ids only.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


class Command(BaseCommand):
    help = "Start the web server (gunicorn) and the task cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--no-cluster", action="store_true", help="Do not start the django-q2 cluster.")
        parser.add_argument("--mllp-port", type=int, default=2575, help="MLLP listener port (0 = off).")

    def handle(self, *args, host, port, workers, no_cluster, mllp_port, **options):
        manage = [sys.executable, "manage.py"]
        children = []
        if not no_cluster:
            children.append(subprocess.Popen([*manage, "qcluster"]))
        mllp_installed = util.find_spec("reconciliation.management.commands.mllp_listener") is not None
        if mllp_port and mllp_installed:
            children.append(subprocess.Popen([*manage, "mllp_listener", "--host", host, "--port", str(mllp_port)]))
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "pharmacy.wsgi:application", "--bind",
                                f"{host}:{port}", "--workers", str(workers), "--threads", "4",
                                "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT,
                                "--logger-class", "pharmacy.log_redaction.RedactingLogger"],
                               env=os.environ.copy())
        children.append(web)
        self.stdout.write(self.style.SUCCESS(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)"))
        # A service manager stops us with SIGTERM: stop the children too, not leave them orphaned.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
