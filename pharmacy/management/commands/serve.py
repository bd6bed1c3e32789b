"""Run the whole application: gunicorn web server + django-q2 cluster (+ MLLP listener when installed).

A child that dies is restarted with a growing delay (1 s, 2 s, 4 s … up to 60 s; back to 1 s after it
has run for a minute), and each exit and restart is logged. SIGTERM (or Ctrl-C) stops every child."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand

logger = logging.getLogger("rxhub.serve")

# Access log without query strings or referrers: a patient search (?q=<name>) must not put PHI
# into the logs (HIPAA 45 CFR 164.312(b); see tests/audit/test_access_control.py). Paths carry ids only.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

HEALTHY_AFTER = 60.0  # a child that ran this long starts again from the first delay


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = 0.0
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=os.environ.copy())
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("serve: started %s (pid %s)", self.name, self.process.pid)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def next_delay(previous: float, ran_for: float, *, first: float | None = None, cap: float | None = None) -> float:
    """Exponential backoff between restarts; a child that stayed up a while starts from ``first``
    (default settings.RXHUB["SERVE_BACKOFF_FIRST"]; the cap is RXHUB["SERVE_BACKOFF_MAX"])."""
    first = float(settings.RXHUB.get("SERVE_BACKOFF_FIRST", 1)) if first is None else first
    cap = float(settings.RXHUB.get("SERVE_BACKOFF_MAX", 60)) if cap is None else cap
    if previous <= 0 or ran_for >= HEALTHY_AFTER:
        return first
    return min(cap, previous * 2)


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
        children: list[Child] = []
        if not no_cluster:
            children.append(Child("task cluster", [*manage, "qcluster"]))
        mllp_installed = "mllp_listener" in get_commands()  # offered by an installed app's commands
        if mllp_port and mllp_installed:
            children.append(Child("MLLP listener", [*manage, "mllp_listener", "--host", host,
                                                    "--port", str(mllp_port)]))
        children.append(Child("web server", [
            sys.executable, "-m", "gunicorn", "pharmacy.wsgi:application", "--bind", f"{host}:{port}",
            "--workers", str(workers), "--threads", "4", "--access-logfile", "-",
            "--access-logformat", ACCESS_LOG_FORMAT, "--logger-class", "pharmacy.log_redaction.RedactingLogger",
        ]))
        # A service manager stops us with SIGTERM: stop the children too, not leave them orphaned.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for child in children:
                child.start()
            self.stdout.write(self.style.SUCCESS(f"Serving on http://{host}:{port}/ (Ctrl-C to stop)"))
            self.stdout.flush()
            while True:
                supervise(children)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop_all(children)


def supervise(children: list[Child]) -> None:
    """One pass: notice children that exited, schedule their restart, start those whose delay is over."""
    now = time.monotonic()
    for child in children:
        if child.process is None or child.running():
            continue
        if child.restart_at is None:
            ran_for = now - child.started_at
            child.delay = next_delay(child.delay, ran_for)
            child.restart_at = now + child.delay
            logger.warning("serve: %s (pid %s) exited with code %s after %.1f s; restarting in %.1f s",
                           child.name, child.process.pid, child.process.returncode, ran_for, child.delay)
        elif now >= child.restart_at:
            child.restarts += 1
            logger.warning("serve: restarting %s (restart %d)", child.name, child.restarts)
            child.start()


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.running():
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(timeout=5)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
