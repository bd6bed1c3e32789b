"""`serve` runs the web server and the MLLP listener as children; stopping it stops them all."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_sigterm_stops_the_web_server_and_listener_too(tmp_path):
    web, mllp = _free_port(), _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DJANGO_HTTPS": "0"}
    serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(web), "--mllp-port", str(mllp),
                              "--workers", "1", "--no-cluster"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert _wait(lambda: _listening(web) and _listening(mllp), 30), "serve did not start its children"
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        assert _wait(lambda: not _listening(web) and not _listening(mllp), 15), "children outlived serve"
    finally:  # whatever happened, leave no process behind (children share serve's process group)
        try:
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        serve.wait(timeout=10)
